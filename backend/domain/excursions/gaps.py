"""Data gaps in a series of reading times, by the engine's rule (issue 20, finding 3). Pure.

An interval longer than `factor` times the logger's expected interval is a gap: the declared interval,
else the shortest interval seen so far. The engine applies the same rule reading by reading; the
reports and the receipt summary use this to say "no data from ... to ..." without running the rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable


def find_gaps(
    times: Iterable[float], expected_interval_s: float | None, factor: float
) -> list[tuple[float, float]]:
    """[from, to) of each gap, in unix seconds; `times` ascending and distinct."""
    gaps: list[tuple[float, float]] = []
    learned: float | None = None
    for start, end in itertools.pairwise(times):
        dt = end - start
        interval = expected_interval_s or learned
        if interval is not None and dt > factor * interval:
            gaps.append((start, end))
        if learned is None or dt < learned:
            learned = dt
    return gaps
