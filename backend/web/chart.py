"""A shipment leg's temperature chart as inline SVG for the web pages: readings over time, the profile's
band, excursions shaded and custody events marked on the time axis. Server-drawn, so it needs no script
and prints as it looks.

Drawn twice, wide and narrow, and the stylesheet shows the one that fits: an SVG scales its text with
its width, so one wide drawing shrunk onto a phone leaves its text a few pixels high. The narrow one has
the phone's own width as its coordinate space, so its text is the size it says. Event names are placed
only where they fit whole inside the plot and clear of the names before them; an event whose name does
not fit keeps its line and its tooltip, and every event is in the timeline below the chart."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backend.reports.chart import thin_series
from backend.reports.record import EventLine, TemperatureLeg


@dataclass(frozen=True, slots=True)
class Layout:
    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float
    font: float  # user units, which are CSS pixels when the drawing is shown at its own width
    time_ticks: int
    label_rows: int


WIDE: Final = Layout(900, 300, 52, 16, 24, 40, 12, 5, 3)
NARROW: Final = Layout(300, 250, 36, 8, 22, 46, 13, 3, 3)
# The average advance of a character of the page's sans-serif, as a share of the font size: enough to
# keep a name clear of its neighbour without measuring text on the server.
CHAR_WIDTH: Final = 0.62


@dataclass(frozen=True, slots=True)
class _Scale:
    layout: Layout
    t0: datetime
    span: float
    v0: float
    v1: float

    def x(self, moment: datetime) -> float:
        lay = self.layout
        fraction = (moment - self.t0).total_seconds() / self.span
        return lay.left + min(max(fraction, 0.0), 1.0) * (lay.width - lay.left - lay.right)

    def y(self, value: float) -> float:
        lay = self.layout
        fraction = (value - self.v0) / (self.v1 - self.v0)
        return lay.height - lay.bottom - fraction * (lay.height - lay.top - lay.bottom)


def _scale(layout: Layout, leg: TemperatureLeg, events: list[EventLine]) -> _Scale:
    moments = [ts for ts, _ in leg.readings] + [e.server_time for e in events]
    t0, t1 = min(moments), max(moments)
    values = [t for _, t in leg.readings] + [v for v in (leg.low_c, leg.high_c) if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 10.0)
    pad = max((high - low) * 0.1, 1.0)
    return _Scale(layout, t0, max((t1 - t0).total_seconds(), 60.0), low - pad, high + pad)


def _ticks(v0: float, v1: float) -> list[float]:
    raw = (v1 - v0) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(v0 / step) * step
    return [first + i * step for i in range(int((v1 - first) / step) + 1)]


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _text_width(text: str, font: float) -> float:
    return len(text) * font * CHAR_WIDTH


def temperature_svg(
    leg: TemperatureLeg, events: list[EventLine], zone: str = "UTC", layout: Layout = WIDE
) -> str:
    """The chart's SVG markup, times in `zone`; every text in it is escaped."""
    tz = _zone(zone)
    lay = layout
    narrow = "narrow" if lay is NARROW else "wide"
    title = f"Temperature of {leg.shipment_id} (°C, times {zone}) against profile {leg.profile}"
    parts = [
        f'<svg class="chart chart-{narrow}" viewBox="0 0 {lay.width:g} {lay.height:g}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" font-size="{lay.font:g}">',
        f"<title>{escape(title)}</title>",
    ]
    if not leg.readings:
        parts.append(
            f'<text x="{lay.width / 2:g}" y="{lay.height / 2:g}" text-anchor="middle" class="chart-empty">'
            "No readings recorded for this leg yet</text></svg>"
        )
        return "".join(parts)
    s = _scale(lay, leg, events)
    left, right, top, bottom = lay.left, lay.width - lay.right, lay.top, lay.height - lay.bottom
    if leg.low_c is not None or leg.high_c is not None:
        y_high = s.y(leg.high_c) if leg.high_c is not None else top
        y_low = s.y(leg.low_c) if leg.low_c is not None else bottom
        parts.append(
            f'<rect class="band" x="{left:g}" y="{y_high:.1f}" width="{right - left:g}" '
            f'height="{max(y_low - y_high, 0):.1f}"><title>allowed range</title></rect>'
        )
    for excursion in leg.excursions:
        x0, x1 = s.x(excursion.start), s.x(excursion.end)
        what = (
            f"excursion {excursion.side} {_number(excursion.limit_c)} °C, peak {_number(excursion.peak_c)} °C"
        )
        parts.append(
            f'<rect class="excursion" x="{x0:.1f}" y="{top:g}" width="{max(x1 - x0, 2):.1f}" '
            f'height="{bottom - top:g}"><title>{escape(what)}</title></rect>'
        )
    for start, end in leg.summary.gaps:
        # No data (issue 20): shaded grey, and the line is broken there rather than drawn across.
        x0, x1 = s.x(start), s.x(end)
        what = f"no data from {start.astimezone(tz):%d %b %H:%M} to {end.astimezone(tz):%d %b %H:%M %Z}"
        parts.append(
            f'<rect class="gap" x="{x0:.1f}" y="{top:g}" width="{max(x1 - x0, 2):.1f}" '
            f'height="{bottom - top:g}" fill="#9ca3af" fill-opacity="0.25">'
            f"<title>{escape(what)}</title></rect>"
        )
    parts.append(
        f'<rect class="frame" x="{left:g}" y="{top:g}" width="{right - left:g}" height="{bottom - top:g}"/>'
    )
    for value in _ticks(s.v0, s.v1):
        y = s.y(value)
        parts.append(f'<line class="grid" x1="{left:g}" x2="{right:g}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{left - 5:g}" y="{y + lay.font / 3:.1f}" text-anchor="end">'
            f"{_number(value)}</text>"
        )
    _time_axis(parts, s, tz, bottom)
    for name, limit in (("low", leg.low_c), ("high", leg.high_c)):
        if limit is not None:
            y = s.y(limit)
            parts.append(f'<line class="limit" x1="{left:g}" x2="{right:g}" y1="{y:.1f}" y2="{y:.1f}"/>')
            parts.append(
                f'<text class="limit-label" x="{right - 4:g}" y="{y - 4:.1f}" text-anchor="end">'
                f"{name} {_number(limit)} °C</text>"
            )
    _events(parts, s, events, tz, top, bottom, left, right)
    gaps = sorted(leg.summary.gaps)
    runs: list[list[str]] = [[]]
    previous = None
    for ts, temp in thin_series(leg.readings):
        # A gap between two drawn points (thinning may skip the readings at its edges) breaks the line.
        if previous is not None and any(previous <= start and end <= ts for start, end in gaps):
            runs.append([])
        runs[-1].append(f"{s.x(ts):.1f},{s.y(temp):.1f}")
        previous = ts
    for run in runs:
        parts.append(f'<polyline class="series" points="{" ".join(run)}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _time_axis(parts: list[str], s: _Scale, tz: ZoneInfo, bottom: float) -> None:
    lay = s.layout
    count = lay.time_ticks
    for i in range(count):
        moment = (s.t0 + timedelta(seconds=s.span * i / (count - 1))).astimezone(tz)
        x = s.x(moment)
        anchor = "start" if i == 0 else "end" if i == count - 1 else "middle"
        # Two lines under the axis: the day, then the time with its zone.
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{bottom + lay.font + 4:g}" text-anchor="{anchor}">'
            f"{moment:%d %b}</text>"
            f'<text class="tick" x="{x:.1f}" y="{bottom + 2 * lay.font + 8:g}" text-anchor="{anchor}">'
            f"{moment:%H:%M %Z}</text>"
        )


def _events(
    parts: list[str],
    s: _Scale,
    events: list[EventLine],
    tz: ZoneInfo,
    top: float,
    bottom: float,
    left: float,
    right: float,
) -> None:
    lay = s.layout
    taken: list[list[tuple[float, float]]] = [[] for _ in range(lay.label_rows)]
    for event in events:
        x = s.x(event.server_time)
        local = event.server_time.astimezone(tz)
        what = (
            f"{event.action.replace('_', ' ')} ({event.outcome}) by {event.actor} at {event.site}, "
            f"{local:%d %b %H:%M %Z}"
        )
        name = event.action.replace("_", " ")
        width = _text_width(name, lay.font)
        # Right of the line where it fits inside the plot, else left of it; never past the frame.
        x0 = x + 3 if x + 3 + width <= right - 2 else x - 3 - width
        label = ""
        if x0 >= left + 2:
            for row, spans in enumerate(taken):
                if all(x0 + width + 4 <= a or x0 >= b + 4 for a, b in spans):
                    spans.append((x0, x0 + width))
                    y = top + lay.font + (lay.font + 3) * row
                    label = f'<text x="{x0:.1f}" y="{y:.1f}">{escape(name)}</text>'
                    break
        parts.append(
            f'<g class="event event-{escape(event.outcome)}"><title>{escape(what)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:g}" y2="{bottom:g}"/>{label}</g>'
        )


def chart_pair(leg: TemperatureLeg, events: list[EventLine], zone: str) -> str:
    """The wide and the narrow drawing; the stylesheet shows one of them."""
    return temperature_svg(leg, events, zone, WIDE) + temperature_svg(leg, events, zone, NARROW)
