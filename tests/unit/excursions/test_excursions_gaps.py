"""Issue 20, finding 3: data gaps are first-class. An interval longer than the gap factor times the
logger's expected interval (declared, else learned from its readings) counts neither in nor out of range,
advances no rule, and is reported as a `data_gap` notice; summaries say how much time was uncovered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from excursion_cases import CRYO, FRESH, T0, minutes, series

from backend.domain.excursions import Engine, Reading, parse_definition, rules_for
from backend.domain.temperature import summarise


def engine(definition, interval_s=None, factor=3.0) -> Engine:
    return Engine(
        rules_for(parse_definition(definition)), None, expected_interval_s=interval_s, gap_factor=factor
    )


def test_finding_3_one_high_reading_then_an_hour_of_nothing_is_no_hour_above():
    e = engine(FRESH, interval_s=300)
    e.feed([Reading(T0, 9.0), Reading(T0 + 3600, 5.0)])
    assert e.minutes_beyond()["high"] == 0.0
    assert e.uncovered_minutes() == 60.0
    [gap] = e.drain()
    assert (gap.kind, gap.severity, minutes(gap.start), minutes(gap.end)) == ("data_gap", "info", 0.0, 60.0)
    assert "no data from 2026-01-10 00:00 UTC to 2026-01-10 01:00 UTC" in gap.note


def test_finding_3_a_backlog_with_a_six_hour_hole_at_a_high_reading_raises_no_temperature_alert():
    # 5-minute samples, learned from the readings; a 6-hour hole right after a 9 °C reading.
    before = series([5.0] * 11 + [9.0], every_minutes=5)
    after = series([5.0] * 12, every_minutes=5, start=before[-1].t + 6 * 3600)
    e = engine(FRESH)
    e.feed(before + after)
    assert e.minutes_beyond()["high"] == 0.0
    assert e.uncovered_minutes() == 360.0
    assert [ep.kind for ep in e.drain()] == ["data_gap"]
    assert e.daily_minutes() == {} or all(v == 0 for day in e.daily_minutes().values() for v in day.values())


def test_finding_3_the_gap_factor_is_a_strict_bound():
    at_limit = engine(FRESH, interval_s=300)
    at_limit.feed([Reading(T0, 9.0), Reading(T0 + 900, 5.0)])  # exactly 3 intervals: covered
    assert at_limit.minutes_beyond()["high"] == 15.0
    assert at_limit.drain() == []
    over = engine(FRESH, interval_s=300)
    over.feed([Reading(T0, 9.0), Reading(T0 + 901, 5.0)])
    assert over.minutes_beyond()["high"] == 0.0
    wider = engine(FRESH, interval_s=300, factor=4.0)
    wider.feed([Reading(T0, 9.0), Reading(T0 + 901, 5.0)])
    assert wider.minutes_beyond()["high"] == pytest.approx(901 / 60)


def test_finding_3_a_gap_does_not_advance_a_consecutive_rule():
    # A dry shipper above -150 °C once, then 3 hours without data, then once more: 2 covered minutes.
    e = engine(CRYO, interval_s=60)
    e.feed([Reading(T0, -140.0), Reading(T0 + 60, -140.0), Reading(T0 + 3 * 3600, -140.0)])
    assert [ep.kind for ep in e.drain()] == ["data_gap"]
    # Staying above for the covered 5 minutes fires it, the gap not counted.
    e.feed([Reading(T0 + 3 * 3600 + 60 * i, -140.0) for i in range(1, 5)])
    [excursion] = [ep for ep in e.drain() if ep.kind == "temperature_high"]
    assert minutes(excursion.fired_at) == pytest.approx(3 * 60 + 4)


def test_finding_3_gaps_fold_the_same_in_chunks_and_at_once():
    readings = series([5.0] * 6 + [9.0], every_minutes=5) + series(
        [9.0] * 3 + [5.0] * 3, every_minutes=5, start=T0 + 5 * 3600
    )
    whole = engine(FRESH)
    whole.feed(readings)
    parts = engine(FRESH)
    for i in range(0, len(readings), 4):
        parts.feed(readings[i : i + 4])
    assert parts.state == whole.state


def test_finding_3_summaries_count_covered_time_only_and_say_what_was_uncovered():
    def at(minute: float) -> datetime:
        return datetime.fromtimestamp(T0 + minute * 60, UTC)

    points = [(at(0), 9.0), (at(60), 9.0), (at(65), 5.0)]
    plain = summarise(points, 2.0, 8.0, True)
    assert (plain.minutes_above, plain.uncovered_minutes) == (65.0, 0.0)
    gapped = summarise(points, 2.0, 8.0, True, gap_starts=[T0])
    assert (gapped.minutes_above, gapped.uncovered_minutes) == (5.0, 60.0)
    assert gapped.mkt_c == plain.mkt_c  # MKT averages the readings: the gap adds none
