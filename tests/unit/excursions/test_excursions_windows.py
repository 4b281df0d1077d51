"""Finding 9: cumulative rules per calendar day (in a time zone) and per rolling window, each with its own
delay, minutes counted over covered time only; the summary's minutes per day follow the same days."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from excursion_cases import T0, series
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.domain.excursions import (
    DATA_GAP,
    Engine,
    Reading,
    dump_state,
    load_state,
    parse_definition,
    rules_for,
)

DAILY = {"low_c": 2.0, "high_c": 8.0, "daily_minutes": 60}
ROLLING = {
    "low_c": 2.0,
    "high_c": 8.0,
    "rules": [
        {"kind": "cumulative", "limit": "high", "delay_minutes": 60, "window": "rolling", "window_hours": 24}
    ],
}
BOTH = {
    "low_c": 2.0,
    "high_c": 8.0,
    "critical_high_c": 15.0,
    "rules": [
        {"kind": "cumulative", "limit": "high", "delay_minutes": 30, "window": "day"},
        {"kind": "cumulative", "limit": "range", "delay_minutes": 45, "window": "rolling", "window_hours": 6},
        {"kind": "cumulative", "limit": "high", "delay_minutes": 120, "severity": "critical"},
    ],
}
HOUR = 3600.0


def _engine(definition: dict[str, object], zone: str = "UTC") -> Engine:
    return Engine(rules_for(parse_definition(definition)), None, time_zone=zone)


def _warm(start: float, minutes: int, temp: float = 9.0) -> list[Reading]:
    """`minutes` beyond the limit from `start`, then back in range (one reading a minute)."""
    return series([temp] * minutes + [5.0], start=start)


def _fired(e: Engine) -> list[tuple[float, str]]:
    """Temperature alerts only: a long pause between two warm spells is also a data-gap notice."""
    return [((ep.fired_at - T0) / 60, ep.severity) for ep in e.drain() if ep.kind != DATA_GAP]


def test_a_daily_budget_resets_at_midnight():
    e = _engine(DAILY)
    # 50 minutes on the first day and 50 on the second: under the daily 60, though 100 in the leg.
    e.feed(_warm(T0 + 10 * HOUR, 50) + _warm(T0 + 34 * HOUR, 50))
    assert _fired(e) == []
    assert {day: round(m["high"]) for day, m in e.daily_minutes().items()} == {
        "2026-01-10": 50,
        "2026-01-11": 50,
    }
    # Another 15 minutes the second day spend its budget: the warning fires at its 60th minute.
    e.feed(_warm(T0 + 36 * HOUR, 15))
    assert _fired(e) == [(36 * 60 + 10, "warning")]


def test_days_are_counted_in_the_time_zone():
    zurich = ZoneInfo("Europe/Zurich")
    start = datetime(2026, 1, 10, 23, 30, tzinfo=zurich).timestamp()
    utc, local = _engine(DAILY), _engine(DAILY, "Europe/Zurich")
    for e in (utc, local):
        e.feed(_warm(start, 60))
    assert {d: round(m["high"]) for d, m in local.daily_minutes().items()} == {
        "2026-01-10": 30,
        "2026-01-11": 30,
    }
    assert {d: round(m["high"]) for d, m in utc.daily_minutes().items()} == {"2026-01-10": 60}
    # 60 minutes in one UTC day: the budget is spent there, not in Zurich's two days.
    assert [s for _t, s in _fired(utc)] == ["warning"]
    assert _fired(local) == []


def test_a_day_the_clocks_go_back_has_25_hours():
    zurich = ZoneInfo("Europe/Zurich")
    start = datetime(2026, 10, 25, 0, 0, tzinfo=zurich).timestamp()
    e = _engine({"low_c": 2.0, "high_c": 8.0, "daily_minutes": 24 * 60 + 30}, "Europe/Zurich")
    e.feed(series([9.0] * (25 * 60 + 1), start=start))
    days = e.daily_minutes()
    assert round(days["2026-10-25"]["high"]) == 25 * 60
    assert [s for _t, s in _fired(e)] == ["warning"]


def test_a_rolling_window_counts_the_last_hours_only():
    near, far = _engine(ROLLING), _engine(ROLLING)
    # 40 minutes at 20:00, then 30 minutes 12 hours later: 70 in 24 h; the same 25 hours apart: 30.
    near.feed(_warm(T0 + 20 * HOUR, 40) + _warm(T0 + 32 * HOUR, 30))
    far.feed(_warm(T0 + 20 * HOUR, 40) + _warm(T0 + 45 * HOUR, 30))
    assert _fired(near) == [(32 * 60 + 20, "warning")]
    assert _fired(far) == []


def test_a_gap_is_no_time_beyond_in_any_window():
    e = _engine(DAILY)
    # One reading at 9 °C, then nothing for two hours (a gap), then back in range: 0 minutes counted.
    e.feed(series([5.0] * 5 + [9.0], start=T0 + 8 * HOUR) + series([5.0, 5.0], start=T0 + 10 * HOUR))
    assert _fired(e) == []
    assert all(m.get("high", 0.0) == 0.0 for m in e.daily_minutes().values())
    r = _engine(ROLLING)
    r.feed(series([5.0] * 5 + [9.0], start=T0 + 8 * HOUR) + series([5.0, 5.0], start=T0 + 10 * HOUR))
    assert _fired(r) == []


def test_each_window_has_its_own_delay_and_severity():
    e = _engine(BOTH)
    e.feed(series([9.0] * 130 + [5.0], start=T0 + HOUR))
    (episode,) = [ep for ep in e.drain() if ep.kind != DATA_GAP]
    assert episode.rules == ("cumulative/day:high:30", "cumulative/6h:range:45", "cumulative:high:120")
    assert ((episode.fired_at - T0) / 60, (episode.escalated_at - T0) / 60) == (90, 180)
    assert episode.severity == "critical"


@pytest.mark.parametrize("field", [{"window": "day"}, {"window": "rolling"}])
def test_only_cumulative_rules_count_over_a_window(field):
    bad = {"low_c": 2.0, "high_c": 8.0, "rules": [{"kind": "instant", "limit": "high", **field}]}
    with pytest.raises(Exception, match="only cumulative rules"):
        parse_definition(bad)
    with pytest.raises(Exception, match="unknown time zone"):
        parse_definition({"high_c": 8.0, "time_zone": "Mars/Olympus"})


# The misbehaving logger's side: a backlog in chunks, in any order and with repeats, gives the alerts
# and minutes per day that the readings in order give (the service recomputes when a chunk lands in the
# past; here that is replayed on the pure engine).
steps = st.lists(st.sampled_from([1, 1, 1, 2, 5, 30, 240]), min_size=60, max_size=60)
temps = st.lists(st.sampled_from([5.0, 7.9, 8.5, 9.0, 16.0, 1.0]), min_size=60, max_size=60)


def _replay(readings: list[Reading], chunks: list[list[Reading]], zone: str) -> Engine:
    seen: dict[float, Reading] = {}
    state = None
    for chunk in chunks:
        fresh = {r.t: r for r in chunk if r.t not in seen}
        before = max(seen, default=None)
        seen.update(fresh)
        if state is None or (before is not None and fresh and min(fresh) <= before):
            e = Engine(rules_for(parse_definition(BOTH)), None, time_zone=zone)
            e.feed(sorted(seen.values()))
        else:
            e = Engine(rules_for(parse_definition(BOTH)), None, load_state(dump_state(state)), time_zone=zone)
            e.feed(sorted(fresh.values()))
        state = e.state
    return e


@settings(max_examples=40, deadline=None)
@given(
    temps, steps, st.randoms(use_true_random=False), st.sampled_from(["UTC", "Europe/Zurich", "Asia/Kolkata"])
)
def test_shuffled_and_repeated_backlogs_count_the_same_days_and_windows(ts, gaps, rnd, zone):
    minutes = list(itertools.accumulate(gaps, initial=0))[: len(ts)]
    readings = [Reading(T0 + 20 * HOUR + 60 * m, t) for m, t in zip(minutes, ts, strict=True)]
    whole = Engine(rules_for(parse_definition(BOTH)), None, time_zone=zone)
    whole.feed(readings)
    shuffled = readings + rnd.sample(readings, len(readings) // 3)
    rnd.shuffle(shuffled)
    cuts = sorted(rnd.sample(range(1, len(shuffled)), 4))
    chunks = [shuffled[a:b] for a, b in itertools.pairwise([0, *cuts, len(shuffled)])]
    replayed = _replay(readings, chunks, zone)
    assert _same_days(replayed, whole)
    key = lambda e: [(x.kind, x.start, x.severity, x.fired_at, x.escalated_at) for x in e.drain()]  # noqa: E731
    assert key(replayed) == key(whole)


def _same_days(a: Engine, b: Engine) -> bool:
    da, db = a.daily_minutes(), b.daily_minutes()
    return da.keys() == db.keys() and all(da[d] == pytest.approx(db[d]) for d in da)


def test_minutes_per_day_add_up_to_the_leg():
    e = _engine(DAILY, "America/New_York")
    e.feed(series([9.0 if (i // 90) % 2 else 5.0 for i in range(3 * 24 * 60)], start=T0))
    per_day = sum(m.get("high", 0.0) for m in e.daily_minutes().values())
    assert per_day == pytest.approx(e.minutes_beyond()["high"])
    assert len(e.daily_minutes()) == 4
    assert (
        datetime.fromtimestamp(T0, ZoneInfo("America/New_York")) + timedelta(days=3)
    ).date().isoformat() in (e.daily_minutes())
