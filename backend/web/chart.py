"""A shipment leg's temperature chart as inline SVG for the web pages: readings over time, the profile's
band, excursions shaded and custody events marked on the time axis. Server-drawn, so it needs no script
and prints as it looks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Final

from backend.reports.chart import thin_series
from backend.reports.record import EventLine, TemperatureLeg

WIDTH: Final = 900
HEIGHT: Final = 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 52.0, 16.0, 24.0, 40.0


@dataclass(frozen=True, slots=True)
class _Scale:
    t0: datetime
    span: float
    v0: float
    v1: float

    def x(self, moment: datetime) -> float:
        fraction = (moment - self.t0).total_seconds() / self.span
        return _LEFT + min(max(fraction, 0.0), 1.0) * (WIDTH - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        fraction = (value - self.v0) / (self.v1 - self.v0)
        return HEIGHT - _BOTTOM - fraction * (HEIGHT - _TOP - _BOTTOM)


def _scale(leg: TemperatureLeg, events: list[EventLine]) -> _Scale:
    moments = [ts for ts, _ in leg.readings] + [e.server_time for e in events]
    t0, t1 = min(moments), max(moments)
    values = [t for _, t in leg.readings] + [v for v in (leg.low_c, leg.high_c) if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 10.0)
    pad = max((high - low) * 0.1, 1.0)
    return _Scale(t0, max((t1 - t0).total_seconds(), 60.0), low - pad, high + pad)


def _ticks(v0: float, v1: float) -> list[float]:
    raw = (v1 - v0) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(v0 / step) * step
    return [first + i * step for i in range(int((v1 - first) / step) + 1)]


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def temperature_svg(leg: TemperatureLeg, events: list[EventLine]) -> str:
    """The chart's SVG markup; every text in it is escaped."""
    title = f"Temperature of {leg.shipment_id} (°C, UTC) against profile {leg.profile}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if not leg.readings:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="chart-empty">'
            "No readings recorded for this leg yet</text></svg>"
        )
        return "".join(parts)
    s = _scale(leg, events)
    left, right, top, bottom = _LEFT, WIDTH - _RIGHT, _TOP, HEIGHT - _BOTTOM
    if leg.low_c is not None or leg.high_c is not None:
        y_high = s.y(leg.high_c) if leg.high_c is not None else top
        y_low = s.y(leg.low_c) if leg.low_c is not None else bottom
        parts.append(
            f'<rect class="band" x="{left}" y="{y_high:.1f}" width="{right - left}" '
            f'height="{max(y_low - y_high, 0):.1f}"><title>allowed range</title></rect>'
        )
    for excursion in leg.excursions:
        x0, x1 = s.x(excursion.start), s.x(excursion.end)
        what = (
            f"excursion {excursion.side} {_number(excursion.limit_c)} °C, peak {_number(excursion.peak_c)} °C"
        )
        parts.append(
            f'<rect class="excursion" x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 2):.1f}" '
            f'height="{bottom - top}"><title>{escape(what)}</title></rect>'
        )
    parts.append(f'<rect class="frame" x="{left}" y="{top}" width="{right - left}" height="{bottom - top}"/>')
    for value in _ticks(s.v0, s.v1):
        y = s.y(value)
        parts.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>'
        )
    for i in range(5):
        moment = s.t0 + timedelta(seconds=s.span * i / 4)
        x = s.x(moment)
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="{anchor}">'
            f"{moment:%d %b %H:%M}</text>"
        )
    for label, limit in (("low", leg.low_c), ("high", leg.high_c)):
        if limit is not None:
            y = s.y(limit)
            parts.append(f'<line class="limit" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
            parts.append(
                f'<text class="limit-label" x="{right - 4}" y="{y - 4:.1f}" text-anchor="end">'
                f"{label} {_number(limit)} °C</text>"
            )
    # Event names on three staggered rows, and only where they do not run into the previous name on
    # the same row: a burst of scans at one moment stays readable (every line keeps its tooltip).
    last_label_end = [-1e9, -1e9, -1e9]
    for index, event in enumerate(events):
        x = s.x(event.server_time)
        what = (
            f"{event.action} ({event.outcome}) by {event.actor} at {event.site}, "
            f"{event.server_time:%d %b %H:%M}"
        )
        row = index % 3
        label = ""
        if x >= last_label_end[row]:
            name = escape(event.action.replace("_", " "))
            label = f'<text x="{x + 3:.1f}" y="{top + 12 + 13 * row}">{name}</text>'
            last_label_end[row] = x + 7 * len(event.action) + 8
        parts.append(
            f'<g class="event event-{escape(event.outcome)}"><title>{escape(what)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>{label}</g>'
        )
    points = " ".join(f"{s.x(ts):.1f},{s.y(temp):.1f}" for ts, temp in thin_series(leg.readings))
    parts.append(f'<polyline class="series" points="{points}"/>')
    parts.append("</svg>")
    return "".join(parts)
