"""Temperature summaries of a series of readings. Pure."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from datetime import datetime

import msgspec

# USP <1079.2>: ΔH/R = 83.144 kJ/mol / 0.0083144 kJ/mol/K.
ACTIVATION_OVER_R_K = 10_000.0


class Summary(msgspec.Struct, frozen=True):
    readings: int
    first: datetime | None
    last: datetime | None
    min_c: float | None
    max_c: float | None
    mean_c: float | None
    mkt_c: float | None
    minutes_above: float
    minutes_below: float
    # Time inside data gaps: counted neither above nor below (issue 20, finding 3).
    uncovered_minutes: float = 0.0
    # The gaps themselves: no data from the first time to the second.
    gaps: list[tuple[datetime, datetime]] = msgspec.field(default_factory=list)


def mean_kinetic_temperature(temps_c: list[float]) -> float:
    terms = [math.exp(-ACTIVATION_OVER_R_K / (t + 273.15)) for t in temps_c]
    return ACTIVATION_OVER_R_K / -math.log(sum(terms) / len(terms)) - 273.15


def summarise(
    series: list[tuple[datetime, float]],
    low_c: float | None,
    high_c: float | None,
    mkt: bool,
    gap_starts: Iterable[float] = (),
) -> Summary:
    """Each reading stands for the time until the next one (the last for none): minutes out of range are
    what the samples show, to one sample interval. An interval that starts a data gap (`gap_starts`, unix
    seconds, as the excursion engine found them) stands for nothing: it is uncovered time. MKT averages
    the readings, so it covers the covered time only."""
    if not series:
        return Summary(0, None, None, None, None, None, None, 0.0, 0.0)
    temps = [t for _, t in series]
    gaps = set(gap_starts)
    above = below = uncovered = 0.0
    holes: list[tuple[datetime, datetime]] = []
    for (ts, temp), (next_ts, _) in itertools.pairwise(series):
        minutes = (next_ts - ts).total_seconds() / 60
        if gaps and ts.timestamp() in gaps:
            uncovered += minutes
            holes.append((ts, next_ts))
            continue
        if high_c is not None and temp > high_c:
            above += minutes
        if low_c is not None and temp < low_c:
            below += minutes
    return Summary(
        readings=len(series),
        first=series[0][0],
        last=series[-1][0],
        min_c=min(temps),
        max_c=max(temps),
        mean_c=sum(temps) / len(temps),
        mkt_c=mean_kinetic_temperature(temps) if mkt else None,
        minutes_above=above,
        minutes_below=below,
        uncovered_minutes=uncovered,
        gaps=holes,
    )
