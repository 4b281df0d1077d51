"""Where a leg's readings left the profile's range: one interval per continuous stretch beyond a limit.
Pure. Like the temperature summary, each reading stands for the time until the next one, except the
last reading before a data gap: the stretch ends there, since nothing says what followed."""

from __future__ import annotations

from datetime import datetime

import msgspec


class Excursion(msgspec.Struct, frozen=True):
    side: str  # "above" or "below"
    limit_c: float
    start: datetime
    # The first reading back in range, or the last reading while still out of range (then `ongoing`).
    end: datetime
    peak_c: float
    minutes: float
    ongoing: bool


def _side(temp: float, low: float | None, high: float | None) -> str | None:
    if high is not None and temp > high:
        return "above"
    if low is not None and temp < low:
        return "below"
    return None


def find_excursions(
    series: list[tuple[datetime, float]],
    low_c: float | None,
    high_c: float | None,
    gaps: list[tuple[datetime, datetime]] | None = None,
) -> list[Excursion]:
    found: list[Excursion] = []
    current: tuple[str, datetime, float] | None = None  # side, start, peak
    gap_ends = {end: start for start, end in gaps or []}
    for ts, temp in series:
        side = _side(temp, low_c, high_c)
        if current is not None and ts in gap_ends:
            found.append(_close(current, gap_ends[ts], low_c, high_c, ongoing=False))
            current = None
        if current is not None and side != current[0]:
            found.append(_close(current, ts, low_c, high_c, ongoing=False))
            current = None
        if side is not None:
            if current is None:
                current = (side, ts, temp)
            else:
                peak = max(current[2], temp) if side == "above" else min(current[2], temp)
                current = (side, current[1], peak)
    if current is not None:
        found.append(_close(current, series[-1][0], low_c, high_c, ongoing=True))
    return found


def _close(
    current: tuple[str, datetime, float],
    end: datetime,
    low_c: float | None,
    high_c: float | None,
    *,
    ongoing: bool,
) -> Excursion:
    side, start, peak = current
    limit = high_c if side == "above" else low_c
    assert limit is not None
    return Excursion(side, limit, start, end, peak, (end - start).total_seconds() / 60, ongoing)
