"""Debounce: once while in view, again after being away longer than the window."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.debounce import Debouncer


def test_a_code_in_view_is_reported_once() -> None:
    debouncer = Debouncer(2.0)
    admitted = [debouncer.admit("shipment:SHP-2026-000123", t / 10) for t in range(0, 300)]  # 30 s in view
    assert admitted == [True] + [False] * 299


def test_short_decode_gaps_do_not_report_again_but_a_long_absence_does() -> None:
    debouncer = Debouncer(2.0)
    assert debouncer.admit("a", 0.0)
    assert not debouncer.admit("a", 1.9)  # missed for 1.9 s: still the same sighting
    assert not debouncer.admit("a", 3.8)
    assert debouncer.admit("a", 5.9)  # away for 2.1 s > window
    assert not debouncer.admit("a", 6.0)


def test_different_codes_are_independent() -> None:
    debouncer = Debouncer(5.0)
    assert debouncer.admit("a", 0.0)
    assert debouncer.admit("b", 0.0)
    assert not debouncer.admit("a", 0.0)


def test_a_zero_window_reports_every_sighting_after_the_first_frame_time() -> None:
    debouncer = Debouncer(0.0)
    assert [debouncer.admit("a", t) for t in (0.0, 0.0, 0.1, 0.2)] == [True, False, True, True]


def test_forgetting_stale_keys_changes_nothing_observable() -> None:
    debouncer = Debouncer(1.0)
    debouncer.admit("a", 0.0)
    debouncer.forget_before(5.0)
    assert debouncer.admit("a", 5.0)


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        Debouncer(-1)


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=60), st.floats(0, 10))
def test_reports_are_exactly_the_sightings_after_a_gap_longer_than_the_window(
    times: list[float], window: float
) -> None:
    times = sorted(times)
    debouncer = Debouncer(window)
    admitted = [debouncer.admit("k", t) for t in times]
    expected = [True] + [b - a > window for a, b in itertools.pairwise(times)]
    assert admitted == expected
