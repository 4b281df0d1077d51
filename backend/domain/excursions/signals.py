"""Signals beside the limit rules: rate of change, predicted crossing (dry shippers), mean kinetic
temperature over the profile's window, battery low and lid open. Pure; each is one `Track` in the
engine state, opened and ended by its own condition with a margin so it does not flap."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from backend.domain.excursions.state import (
    BATTERY,
    LID,
    MKT,
    PREDICTED,
    RATE,
    TEMPERATURE_HIGH,
    Reading,
    Track,
    fire,
)
from backend.domain.temperature import ACTIVATION_OVER_R_K

if TYPE_CHECKING:
    from backend.domain.excursions.engine import Engine

BATTERY_MARGIN_PCT = 5
# Readings kept per window: enough for a slope, few enough to store with the leg's state every batch.
RATE_POINTS = 30
TREND_POINTS = 60
MIN_TREND_POINTS = 6
MKT_MIN_SPAN_HOURS = 24


def step(engine: Engine, r: Reading) -> None:
    d = engine.rules.definition
    if r.battery_pct is not None:
        low = r.battery_pct < d.battery_low_pct
        _flag(
            engine,
            BATTERY,
            r.t,
            on=low,
            off=r.battery_pct >= d.battery_low_pct + BATTERY_MARGIN_PCT,
            value=float(r.battery_pct),
            better=min,
        )
    if r.lid_open is not None:
        _flag(
            engine,
            LID,
            r.t,
            on=r.lid_open,
            off=not r.lid_open,
            value=None,
            better=max,
            delay_s=d.lid_open_minutes * 60.0,
        )
    if d.rate_c_per_minute is not None:
        _rate(engine, r, d.rate_c_per_minute, d.rate_window_minutes * 60.0)
    high = engine.rules.limits.get("high", engine.rules.limits.get("critical_high"))
    if d.predictive and high is not None and engine.planned_arrival is not None:
        _predict(engine, r, high, d.predict_window_minutes * 60.0, engine.planned_arrival)
    if d.mkt_hours is not None and "high" in engine.rules.limits:
        _mkt(engine, r, engine.rules.limits["high"], d.mkt_hours, d.hysteresis_c)


def _flag(
    engine: Engine,
    kind: str,
    t: float,
    *,
    on: bool,
    off: bool,
    value: float | None,
    better: Callable[[float, float], float],
    delay_s: float = 0.0,
    note: str = "",
) -> None:
    tracks = engine.state.tracks
    track = tracks.setdefault(kind, Track())
    if not track.active and on:
        tracks[kind] = track = Track(active=True, start=t, peak=value)
    if not track.active:
        return
    if value is not None:
        track.peak = value if track.peak is None else better(track.peak, value)
    if track.severity is None and on and t - track.start >= delay_s:
        fire(track, kind, "warning", t)
        track.note = note
    if off:
        engine.finish_track(kind, t)


def _window(points: list[tuple[float, float]], t: float, window_s: float) -> list[tuple[float, float]]:
    return [p for p in points if p[0] >= t - window_s]


def _keep(points: list[tuple[float, float]], r: Reading, spacing_s: float) -> list[tuple[float, float]]:
    if not points or r.t - points[-1][0] >= spacing_s:
        return [*points, (r.t, r.temp_c)]
    return points


def _rate(engine: Engine, r: Reading, limit_per_min: float, window_s: float) -> None:
    """°C per minute against the oldest kept reading of the window (at least half a window back)."""
    s = engine.state
    s.recent = _window(s.recent, r.t, window_s)
    if s.recent and r.t - s.recent[0][0] >= window_s / 2:
        t0, temp0 = s.recent[0]
        rate = (r.temp_c - temp0) / ((r.t - t0) / 60)
        _flag(
            engine,
            RATE,
            r.t,
            on=abs(rate) >= limit_per_min,
            off=abs(rate) < limit_per_min / 2,
            value=rate,
            better=lambda a, b: a if abs(a) >= abs(b) else b,
            note=f"{rate:+.2f} °C/min over {(r.t - t0) / 60:.0f} min (limit {limit_per_min:g} °C/min)",
        )
    s.recent = _keep(s.recent, r, window_s / RATE_POINTS)


def crossing_time(points: list[tuple[float, float]], limit_c: float) -> float | None:
    """When the least-squares line through `points` reaches `limit_c`, if it is warming towards it."""
    n = len(points)
    mean_t = sum(p[0] for p in points) / n
    mean_c = sum(p[1] for p in points) / n
    var = sum((p[0] - mean_t) ** 2 for p in points)
    if var == 0:
        return None
    slope = sum((p[0] - mean_t) * (p[1] - mean_c) for p in points) / var
    if slope <= 0:
        return None
    now = points[-1][0]
    fitted_now = mean_c + slope * (now - mean_t)
    return now + max(limit_c - fitted_now, 0.0) / slope


def _predict(engine: Engine, r: Reading, limit_c: float, window_s: float, arrival: float) -> None:
    s = engine.state
    s.trend = _keep(_window(s.trend, r.t, window_s), r, window_s / TREND_POINTS)
    points = s.trend if s.trend[-1][0] == r.t else [*s.trend, (r.t, r.temp_c)]
    if len(points) < MIN_TREND_POINTS or r.t - points[0][0] < window_s / 2:
        return
    eta = crossing_time(points, limit_c)
    # Once beyond the limit the excursion alert speaks; after the planned arrival, the late alert does.
    predicted = eta is not None and eta <= arrival and r.temp_c <= limit_c and r.t < arrival
    note = ""
    if eta is not None:
        at = datetime.fromtimestamp(eta, UTC).isoformat(timespec="minutes")
        due = datetime.fromtimestamp(arrival, UTC).isoformat(timespec="minutes")
        note = f"warming trend reaches {limit_c:g} °C at about {at}, before the planned arrival {due}"
    # Past the limit the warning hands over to the excursion alert only once that alert fires: ending it at
    # the crossing left a dry shipper above -150 °C with no open alert for the critical rule's delay
    # (issue 20, finding 8). Back in range without a predicted crossing, it ends as before.
    excursion = s.tracks.get(TEMPERATURE_HIGH)
    handed_over = excursion is not None and excursion.active and excursion.severity is not None
    off = handed_over or (r.temp_c <= limit_c and not predicted)
    _flag(engine, PREDICTED, r.t, on=predicted, off=off, value=r.temp_c, better=max, note=note)


def mkt_of(buckets: list[tuple[int, float, int]]) -> float:
    total = math.fsum(b[1] for b in buckets)
    count = sum(b[2] for b in buckets)
    return ACTIVATION_OVER_R_K / -math.log(total / count) - 273.15


def _mkt(engine: Engine, r: Reading, high_c: float, hours: int, hysteresis: float) -> None:
    """MKT over the whole hours of the profile's window that hold readings, against the high limit. A
    few hours' MKT only restates the excursion alerts, so it is judged once the data spans the window (a
    day at most: a 30-day window is judged over the days it already holds)."""
    s = engine.state
    hour = math.floor(r.t / 3600)
    term = math.exp(-ACTIVATION_OVER_R_K / (r.temp_c + 273.15))
    buckets = [b for b in s.mkt_buckets if b[0] > hour - hours]
    if buckets and buckets[-1][0] == hour:
        last = buckets[-1]
        buckets[-1] = (hour, last[1] + term, last[2] + 1)
    else:
        buckets.append((hour, term, 1))
    s.mkt_buckets = buckets
    if s.first_t is None or r.t - s.first_t < min(hours, MKT_MIN_SPAN_HOURS) * 3600:
        return
    mkt = mkt_of(buckets)
    _flag(
        engine,
        MKT,
        r.t,
        on=mkt > high_c,
        off=mkt <= high_c - hysteresis,
        value=mkt,
        better=max,
        note=f"mean kinetic temperature {mkt:.2f} °C over the last {hours} h (limit {high_c:g} °C)",
    )
