"""Excursions found in a leg's readings agree with the temperature summary's minutes out of range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from backend.domain.temperature import summarise
from backend.reports.excursions import find_excursions

T0 = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def series(temps: list[float], step: int = 5) -> list[tuple[datetime, float]]:
    return [(T0 + timedelta(minutes=step * i), t) for i, t in enumerate(temps)]


def test_a_warm_spell_is_one_excursion_ending_at_the_first_reading_back_in_range():
    [found] = find_excursions(series([5, 9, 12, 10, 7, 6]), 2.0, 8.0)
    assert (found.side, found.limit_c, found.peak_c, found.minutes, found.ongoing) == (
        "above",
        8.0,
        12,
        15,
        False,
    )
    assert found.start == T0 + timedelta(minutes=5)
    assert found.end == T0 + timedelta(minutes=20)


def test_switching_sides_closes_one_and_opens_the_other():
    found = find_excursions(series([9, 1, 0.5, 5]), 2.0, 8.0)
    assert [(e.side, e.peak_c, e.minutes) for e in found] == [("above", 9, 5), ("below", 0.5, 10)]


def test_still_out_at_the_last_reading_is_ongoing():
    [found] = find_excursions(series([-160, -149, -140]), None, -150.0)
    assert (found.ongoing, found.peak_c, found.end) == (True, -140, T0 + timedelta(minutes=10))


def test_no_limits_no_excursions():
    assert find_excursions(series([100, -100]), None, None) == []


@given(st.lists(st.floats(min_value=-10, max_value=20, allow_nan=False), max_size=40))
def test_excursion_minutes_are_the_summarys_minutes_out_of_range(temps):
    readings = series(temps, step=3)
    found = find_excursions(readings, 2.0, 8.0)
    summary = summarise(readings, 2.0, 8.0, False)
    assert sum(e.minutes for e in found if e.side == "above") == summary.minutes_above
    assert sum(e.minutes for e in found if e.side == "below") == summary.minutes_below
    for excursion in found:
        assert excursion.start <= excursion.end
        assert (excursion.peak_c > 8.0) if excursion.side == "above" else (excursion.peak_c < 2.0)
