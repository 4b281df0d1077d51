"""A shipment leg's temperature chart as a reportlab Drawing: the readings over time, the profile's limits
as dashed lines, and the stretches beyond them shaded. Drawn by hand (not a chart widget) so the limits
and excursions land exactly where the numbers say."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final

from reportlab.graphics.shapes import Drawing, Line, PolyLine, Rect, String
from reportlab.lib import colors

from backend.reports.record import TemperatureLeg

_LEFT: Final = 46.0
_RIGHT: Final = 12.0
_BOTTOM: Final = 28.0
_TOP: Final = 22.0
# Above this many points the line is drawn from per-bucket minima and maxima: peaks survive, size does not.
MAX_POINTS: Final = 2000
EXCURSION_FILL: Final = colors.Color(1, 0.82, 0.82)
LIMIT_COLOUR: Final = colors.Color(0.78, 0.08, 0.08)
LINE_COLOUR: Final = colors.Color(0.1, 0.3, 0.7)


def temperature_chart(leg: TemperatureLeg, width: float = 480, height: float = 190) -> Drawing:
    drawing = Drawing(width, height)
    title = f"{leg.shipment_id}: temperature (°C) over time (UTC), profile {leg.profile}"
    drawing.add(String(_LEFT, height - 12, title, fontName="Helvetica-Bold", fontSize=8))
    if not leg.readings:
        drawing.add(Rect(_LEFT, _BOTTOM, width - _LEFT - _RIGHT, height - _BOTTOM - _TOP, fillColor=None))
        drawing.add(
            String(
                width / 2, height / 2, "No readings recorded for this leg", fontSize=9, textAnchor="middle"
            )
        )
        return drawing
    plot = _Plot(leg, width, height)
    for excursion in leg.excursions:
        x0, x1 = plot.x(excursion.start), plot.x(excursion.end)
        drawing.add(
            Rect(
                x0,
                plot.bottom,
                max(x1 - x0, 1.0),
                plot.top - plot.bottom,
                fillColor=EXCURSION_FILL,
                strokeColor=None,
            )
        )
    drawing.add(Rect(plot.left, plot.bottom, plot.right - plot.left, plot.top - plot.bottom, fillColor=None))
    for value in plot.y_ticks():
        y = plot.y(value)
        drawing.add(Line(plot.left - 3, y, plot.left, y))
        drawing.add(String(plot.left - 5, y - 3, _number(value), fontSize=7, textAnchor="end"))
    ticks = plot.x_ticks()
    for moment, label in zip(ticks, tick_labels(ticks), strict=True):
        x = plot.x(moment)
        drawing.add(Line(x, plot.bottom - 3, x, plot.bottom))
        drawing.add(String(x, plot.bottom - 12, label, fontSize=7, textAnchor="middle"))
    for label, limit in (("low", leg.low_c), ("high", leg.high_c)):
        if limit is None:
            continue
        y = plot.y(limit)
        drawing.add(Line(plot.left, y, plot.right, y, strokeColor=LIMIT_COLOUR, strokeDashArray=[4, 2]))
        drawing.add(
            String(
                plot.right - 2,
                y + 2,
                f"{label} limit {_number(limit)} °C",
                fontSize=6.5,
                fillColor=LIMIT_COLOUR,
                textAnchor="end",
            )
        )
    points: list[float] = []
    for ts, temp in thin_series(leg.readings):
        points += [plot.x(ts), plot.y(temp)]
    if len(points) == 2:
        points += points
    drawing.add(PolyLine(points, strokeColor=LINE_COLOUR, strokeWidth=1))
    legend = f"{leg.summary.readings} readings"
    if leg.excursions:
        legend += f"; {len(leg.excursions)} excursion(s) shaded"
    drawing.add(String(plot.right, height - 12, legend, fontSize=7, textAnchor="end"))
    return drawing


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def thin_series(series: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """At most MAX_POINTS points: per-bucket minima and maxima, so peaks survive thinning."""
    if len(series) <= MAX_POINTS:
        return series
    size = math.ceil(len(series) / (MAX_POINTS // 2))
    kept: list[tuple[datetime, float]] = []
    for start in range(0, len(series), size):
        bucket = series[start : start + size]
        low = min(bucket, key=lambda p: p[1])
        high = max(bucket, key=lambda p: p[1])
        kept += sorted({low, high})
    return kept


class _Plot:
    """Scales from (time, °C) to drawing coordinates."""

    def __init__(self, leg: TemperatureLeg, width: float, height: float) -> None:
        self.left, self.right = _LEFT, width - _RIGHT
        self.bottom, self.top = _BOTTOM, height - _TOP
        self.t0 = leg.readings[0][0]
        span = (leg.readings[-1][0] - self.t0).total_seconds()
        self.span = span if span > 0 else 60.0
        values = [t for _, t in leg.readings] + [v for v in (leg.low_c, leg.high_c) if v is not None]
        low, high = min(values), max(values)
        pad = max((high - low) * 0.1, 1.0)
        self.v0, self.v1 = low - pad, high + pad

    def x(self, moment: datetime) -> float:
        fraction = (moment - self.t0).total_seconds() / self.span
        return self.left + min(max(fraction, 0.0), 1.0) * (self.right - self.left)

    def y(self, value: float) -> float:
        return self.bottom + (value - self.v0) / (self.v1 - self.v0) * (self.top - self.bottom)

    def y_ticks(self) -> list[float]:
        raw = (self.v1 - self.v0) / 5
        magnitude = 10 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
        first = math.ceil(self.v0 / step) * step
        return [first + i * step for i in range(int((self.v1 - first) / step) + 1)]

    def x_ticks(self) -> list[datetime]:
        return time_ticks(self.t0, self.t0 + timedelta(seconds=self.span))


# Tick steps a reader counts in, in seconds: from seconds to days.
_STEPS: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_MAX_TICKS: Final = 6


def time_ticks(start: datetime, end: datetime) -> list[datetime]:
    """Ticks on round times (whole minutes, quarter hours, hours...) between `start` and `end`, at most
    `_MAX_TICKS`: evenly spaced fractions of a short leg all fell on the same minute."""
    span = max((end - start).total_seconds(), 1.0)
    step = next((s for s in _STEPS if span / s <= _MAX_TICKS - 1), None)
    if step is None:
        days = math.ceil(span / 86400 / (_MAX_TICKS - 1))
        step = days * 86400
    epoch = start.timestamp()
    first = math.ceil(epoch / step) * step
    ticks = []
    moment = first
    while moment <= end.timestamp() + 1e-6:
        ticks.append(datetime.fromtimestamp(moment, tz=start.tzinfo or UTC))
        moment += step
    return ticks or [start]


def tick_labels(ticks: list[datetime]) -> list[str]:
    """Each tick's label, distinct: seconds when the ticks are less than a minute apart, the date on the
    first tick and where the day changes (on every tick when they span days, the date alone when they are
    days apart)."""
    utc = [t.astimezone(UTC) for t in ticks]
    step = (utc[1] - utc[0]).total_seconds() if len(utc) > 1 else 60.0
    clock = "%H:%M:%S" if step < 60 else "%H:%M"
    if step >= 86400:
        return [moment.strftime("%d %b") for moment in utc]
    # Over more than a day the same clock time comes back: every label then names its day.
    dated = (utc[-1] - utc[0]).total_seconds() >= 86400
    labels = []
    for i, moment in enumerate(utc):
        new_day = dated or i == 0 or moment.date() != utc[i - 1].date()
        labels.append(moment.strftime(f"%d %b {clock}" if new_day else clock))
    return labels
