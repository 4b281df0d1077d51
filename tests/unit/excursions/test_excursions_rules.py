"""Table tests of the rules engine: each rule kind with its delay, hysteresis, critical limits and
escalation, the signals beside the limits, and the end of a leg."""

from __future__ import annotations

import pytest
from excursion_cases import CRT, CRYO, FRESH, T0, engine, minutes, run, series

from backend.domain.errors import InvalidInput
from backend.domain.excursions import parse_definition, rules_for


def shape(episodes):
    return [
        (e.kind, e.severity, minutes(e.start), None if e.end is None else minutes(e.end), e.peak)
        for e in episodes
    ]


@pytest.mark.parametrize(
    ("definition", "temps", "expected"),
    [
        # Fresh: 25 min above 8 °C is inside the 30-minute cumulative budget.
        (FRESH, [5] * 5 + [9] * 5 + [5] * 5, []),
        # 35 min above: warns when the budget runs out, ends at the first reading back inside.
        (FRESH, [5] * 5 + [9] * 7 + [5] * 5, [("temperature_high", "warning", 25.0, 60.0, 9.0)]),
        # Cumulative does not reset: 20 + 20 minutes, interrupted, still make 30.
        (
            FRESH,
            [5] * 2 + [9] * 4 + [5] * 4 + [9] * 4 + [5] * 2,
            [("temperature_high", "warning", 50.0, 70.0, 9.0)],
        ),
        # Above 15 °C is critical at once, from the first reading.
        (FRESH, [5] * 3 + [16] + [5] * 3, [("temperature_high", "critical", 15.0, 20.0, 16.0)]),
        # Below 0 °C likewise, on the low side.
        (FRESH, [5] * 3 + [-0.5] + [5] * 3, [("temperature_low", "critical", 15.0, 20.0, -0.5)]),
        # Controlled room temperature: 60 minutes cumulative outside 15-25 °C.
        (CRT, [20] * 2 + [26] * 11 + [20] * 2, []),
        (CRT, [20] * 2 + [26] * 12 + [20] * 2, [("temperature_high", "warning", 10.0, 70.0, 26.0)]),
        (CRT, [20] * 2 + [14] * 10 + [20] * 2, []),
    ],
)
def test_fresh_and_room_temperature_rules_on_five_minute_samples(definition, temps, expected):
    assert shape(run(definition, series(temps, every_minutes=5))) == expected


@pytest.mark.parametrize(
    ("temps", "expected"),
    [
        # Four minutes above -150 °C: under the 5-minute consecutive delay.
        ([-190] * 3 + [-149] * 4 + [-190] * 3, []),
        # Five minutes: critical, fired at the fifth minute.
        ([-190] * 3 + [-149] * 5 + [-190] * 3, [("temperature_high", "critical", 3.0, 8.0, -149.0)]),
        # Interrupted (back to -190 in between): two short episodes, neither long enough.
        ([-190] * 3 + [-149] * 3 + [-190] + [-149] * 3 + [-190] * 3, []),
    ],
)
def test_cryogenic_consecutive_rule(temps, expected):
    episodes = run(CRYO, series(temps))
    assert shape(episodes) == expected
    if episodes:
        assert minutes(episodes[0].fired_at) == 8.0


def test_an_instant_rule_with_a_delay_needs_the_current_reading_beyond():
    custom = {"high_c": 8.0, "rules": [{"kind": "instant", "limit": "high", "delay_minutes": 10}]}
    # Beyond from minute 0 to 9 (inclusive), back at 10: the reading at 10 is inside, no alert.
    assert run(custom, series([9] * 10 + [5] * 3)) == []
    [episode] = run(custom, series([9] * 11 + [5] * 3))
    assert minutes(episode.fired_at) == 10.0


def test_hysteresis_keeps_one_episode_through_a_flapping_signal():
    custom = {
        "high_c": 8.0,
        "hysteresis_c": 0.5,
        "rules": [{"kind": "consecutive", "limit": "high", "delay_minutes": 10}],
    }
    flapping = [5] * 2 + [8.2, 7.8] * 8 + [7.4] * 3
    [episode] = run(custom, series(flapping))
    assert (minutes(episode.start), minutes(episode.end)) == (2.0, 18.0)
    # Without hysteresis each dip below 8 °C would end it, and no run would last 10 minutes.
    assert run({**custom, "hysteresis_c": 0.0}, series(flapping)) == []


def test_a_warning_escalates_to_critical_in_the_same_episode():
    [episode] = run(FRESH, series([5] * 2 + [9] * 8 + [16] * 2 + [5] * 2, every_minutes=5))
    assert (episode.severity, minutes(episode.fired_at), minutes(episode.escalated_at)) == (
        "critical",
        40.0,
        50.0,
    )
    assert episode.rules == ("cumulative:range:30", "instant:critical_high:0")
    assert episode.peak == 16.0


def test_rate_of_change_warns_and_ends_once_the_rate_halves():
    custom = {"high_c": 25.0, "rate_c_per_minute": 0.5, "rate_window_minutes": 10}
    temps = [5.0] * 15 + [5.0 + i for i in range(1, 11)] + [15.0] * 15
    [episode] = run(custom, series(temps))
    assert episode.kind == "rate_of_change"
    assert episode.end is not None
    assert episode.peak == pytest.approx(1.0)


def test_predictive_warning_when_the_warming_trend_crosses_before_arrival():
    # -190 °C warming by 0.5 °C per minute: -150 °C is 80 minutes away.
    warming = [-190 + 0.5 * i for i in range(40)]
    [episode] = run(CRYO, series(warming), planned_arrival=T0 + 3 * 3600)
    assert episode.kind == "predicted_excursion"
    assert episode.severity == "warning"
    assert "before the planned arrival" in episode.note
    # Arriving in 70 minutes, before the crossing: nothing to warn about. Flat: nothing either.
    assert run(CRYO, series(warming), planned_arrival=T0 + 70 * 60) == []
    assert run(CRYO, series([-190.0] * 60), planned_arrival=T0 + 3 * 3600) == []


def test_mkt_over_the_window_above_the_high_limit():
    custom = {"low_c": 2.0, "high_c": 8.0, "mkt_hours": 24, "rules": []}
    [episode] = run(custom, series([8.4] * 26, every_minutes=60))
    assert episode.kind == "mkt_high"
    assert minutes(episode.fired_at) == 24 * 60
    assert episode.peak == pytest.approx(8.4)
    # Cryogenic profiles define no MKT.
    assert [e for e in run(CRYO, series([-100.0] * 30, every_minutes=60)) if e.kind == "mkt_high"] == []


def test_battery_low_and_lid_open_with_its_delay():
    custom = {"high_c": 8.0, "battery_low_pct": 20, "lid_open_minutes": 3}
    readings = series([5.0] * 4, battery_pct=30) + series([5.0] * 4, start=T0 + 240, battery_pct=15)
    [battery] = run(custom, readings)
    assert (battery.kind, battery.peak, battery.end) == ("battery_low", 15.0, None)
    # The lid open for two minutes is under the delay; for four, it alerts.
    short = (
        series([5.0] * 2, lid_open=False)
        + series([5.0] * 2, start=T0 + 120, lid_open=True)
        + series([5.0] * 2, start=T0 + 240, lid_open=False)
    )
    assert run(custom, short) == []
    long = series([5.0] * 4, lid_open=True) + series([5.0], start=T0 + 240, lid_open=False)
    [lid] = run(custom, long)
    assert (lid.kind, minutes(lid.fired_at), minutes(lid.end)) == ("lid_open", 3.0, 4.0)


def test_closing_the_leg_ends_every_episode_in_progress():
    e = engine(CRYO)
    e.feed(series([-190] * 2 + [-140] * 10))
    [ongoing] = e.drain()
    assert ongoing.end is None
    e.close(T0 + 3600)
    [ended] = e.drain()
    assert (ended.kind, minutes(ended.end)) == ("temperature_high", 60.0)
    e.feed(series([-140], start=T0 + 7200))
    assert e.drain() == []


def test_default_profiles_expand_into_the_documented_rules():
    assert [r.describe() for r in rules_for(parse_definition(FRESH)).rules] == [
        "warning: outside the range for 30 min cumulative",
        "critical: below 0 °C at once",
        "critical: above 15 °C at once",
    ]
    assert [r.describe() for r in rules_for(parse_definition(CRYO)).rules][-1] == (
        "critical: above -150 °C for 5 min consecutive"
    )


@pytest.mark.parametrize(
    ("definition", "words"),
    [
        ({"low_c": 8.0, "high_c": 2.0}, "low_c must be below high_c"),
        ({"high_c": 8.0, "critical_high_c": 5.0}, "critical_high_c must not be below high_c"),
        ({"cumulative_minutes": 30}, "at least one temperature limit"),
        ({"high_c": 8.0, "rules": [{"kind": "consecutive", "limit": "range"}]}, "only cumulative"),
        ({"high_c": 8.0, "rules": [{"kind": "instant", "limit": "low"}]}, "low_c is not set"),
        ({"high_c": 8.0, "colour": "blue"}, "unknown field"),
        ({"high_c": "warm"}, "Expected `float | null`"),
    ],
)
def test_invalid_definitions_are_refused_with_the_reason(definition, words):
    with pytest.raises(InvalidInput) as refused:
        parse_definition(definition)
    assert words in refused.value.detail
