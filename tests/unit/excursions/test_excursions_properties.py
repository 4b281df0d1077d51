"""Properties of the rules engine: time beyond a limit only grows as readings are added and equals what
the samples show; feeding in chunks through a stored state is feeding at once; and arrival order of a
backlog does not change the alerts, with the service's own recompute-on-backlog rule and reconciliation
played against an alerts table kept in memory."""

from __future__ import annotations

import itertools

from excursion_cases import FRESH, T0, engine
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.domain.excursions import (
    Episode,
    ExistingAlert,
    Open,
    Reading,
    Retire,
    Update,
    dump_state,
    load_state,
    plan,
)

PROFILES = [
    FRESH,
    {
        "low_c": None,
        "high_c": -150.0,
        "critical_high_c": -150.0,
        "consecutive_minutes": 5,
        "predictive": True,
    },
    {
        "low_c": 2.0,
        "high_c": 8.0,
        "hysteresis_c": 0.3,
        "rate_c_per_minute": 0.8,
        "rules": [
            {"kind": "instant", "limit": "high", "delay_minutes": 10},
            {"kind": "consecutive", "limit": "low", "delay_minutes": 15, "severity": "critical"},
        ],
    },
]

temperatures = st.lists(
    st.sampled_from([-1.0, 1.5, 2.0, 5.0, 7.8, 8.0, 8.2, 9.0, 16.0]), min_size=1, max_size=120
)
gaps = st.lists(st.sampled_from([1, 1, 1, 2, 5, 30]), min_size=120, max_size=120)


def build(temps: list[float], steps: list[int], cryo: bool = False) -> list[Reading]:
    times = itertools.accumulate(steps, initial=0)
    shift = -157.0 if cryo else 0.0
    return [Reading(T0 + 60 * m, t + shift, battery_pct=None) for m, t in zip(times, temps, strict=False)]


@given(temperatures, gaps, st.integers(min_value=0, max_value=2))
def test_time_beyond_never_decreases_and_equals_what_the_samples_show(temps, steps, which):
    readings = build(temps, steps, cryo=which == 1)
    e = engine(PROFILES[which])
    previous: dict[str, float] = {}
    for reading in readings:
        e.feed([reading])
        now = e.minutes_beyond()
        assert all(now[k] >= previous.get(k, 0.0) for k in now)
        previous = now
    limits = e.rules.limits
    # Issue 20, finding 3: an interval longer than 3 times the shortest one before it is a data gap,
    # neither in nor out of range; every other interval counts as its first reading says.
    gap_starts, shortest = set(), None
    for a, b in itertools.pairwise(readings):
        if shortest is not None and b.t - a.t > 3 * shortest:
            gap_starts.add(a.t)
        shortest = b.t - a.t if shortest is None else min(shortest, b.t - a.t)
    assert {start for start, _end in e.state.gaps} == gap_starts
    assert abs(e.uncovered_minutes() - sum(end - start for start, end in e.state.gaps) / 60) < 1e-6
    for name, threshold in limits.items():
        expected = sum(
            (b.t - a.t) / 60
            for a, b in itertools.pairwise(readings)
            if a.t not in gap_starts
            and (a.temp_c > threshold if name.endswith("high") else a.temp_c < threshold)
        )
        assert abs(previous[name] - expected) < 1e-6
        per_day = sum(day.get(name, 0.0) for day in e.daily_minutes().values())
        assert abs(per_day - expected) < 1e-6


@given(temperatures, gaps, st.integers(min_value=0, max_value=2), st.randoms(use_true_random=False))
def test_chunks_through_a_stored_state_equal_one_feed(temps, steps, which, rnd):
    readings = build(temps, steps, cryo=which == 1)
    arrival = T0 + 3 * 3600
    whole = engine(PROFILES[which], arrival)
    whole.feed(readings)
    expected = whole.drain()

    cuts = sorted(rnd.sample(range(len(readings) + 1), min(3, len(readings) + 1)))
    blob: bytes | None = None
    finished: list[Episode] = []
    ongoing: list[Episode] = []
    for lo, hi in itertools.pairwise([0, *cuts, len(readings)]):
        part = engine(PROFILES[which], arrival)
        if blob is not None:
            part.state = load_state(blob)
        part.feed(readings[lo:hi])
        drained = part.drain()
        finished += [e for e in drained if e.end is not None]
        ongoing = [e for e in drained if e.end is None]
        blob = dump_state(part.state)
    assert blob is not None

    def order(episodes: list[Episode]) -> list[Episode]:
        return sorted(episodes, key=lambda e: (e.end is None, e.start, e.kind))

    assert order(finished + ongoing) == order(expected)
    assert load_state(blob) == whole.state


class MemoryAlerts:
    """The alerts table as the service keeps it, applying the reconciliation plan."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, object]] = {}
        self.ids = itertools.count(1)

    def existing(self) -> list[ExistingAlert]:
        return [
            ExistingAlert(
                id=i,
                withdrawn=r["status"] == "withdrawn",
                **{k: v for k, v in r.items() if k != "status"},
                status="closed" if r["status"] == "withdrawn" else r["status"],
            )
            for i, r in self.rows.items()
        ]

    def apply(self, episodes: list[Episode], full: bool) -> None:
        for action in plan(episodes, self.existing(), full):
            if isinstance(action, Open):
                e = action.episode
                open_now = [r for r in self.rows.values() if r["kind"] == e.kind and r["status"] == "open"]
                assert not (open_now and e.end is None), "two open alerts for one condition"
                self.rows[next(self.ids)] = self._row(e, "open" if e.end is None else "resolved")
            elif isinstance(action, Update):
                row = self.rows[action.alert_id]
                status = "resolved" if action.resolve else row["status"]
                self.rows[action.alert_id] = self._row(action.episode, status)
            elif isinstance(action, Retire):
                self.rows[action.alert_id]["status"] = "withdrawn"

    @staticmethod
    def _row(e: Episode, status: str) -> dict[str, object]:
        return {
            "kind": e.kind,
            "status": status,
            "severity": e.severity,
            "started_at": e.start,
            "ended_at": e.end,
            "peak_value": e.peak,
            "minutes_beyond": e.minutes_beyond,
        }

    def final(self) -> list[tuple[object, ...]]:
        """What the readings bear out: alerts withdrawn after a backlog are kept but not counted."""
        return sorted(
            (r["kind"], r["status"], r["severity"], r["started_at"], r["ended_at"], r["peak_value"])
            for r in self.rows.values()
            if r["status"] != "withdrawn"
        )


def arrive(batches: list[list[Reading]], definition: dict[str, object]) -> MemoryAlerts:
    """What the service does per batch: fold what is newer than the state's last reading, or start over
    from every reading stored when the batch reaches back before it."""
    table = MemoryAlerts()
    stored: list[Reading] = []
    blob: bytes | None = None
    for batch in batches:
        stored = sorted({r.t: r for r in [*stored, *batch]}.values())
        e = engine(definition)
        last = None if blob is None else load_state(blob).last
        full = blob is None or (last is not None and min(r.t for r in batch) <= last.t)
        if not full:
            assert blob is not None
            e.state = load_state(blob)
        e.feed(stored if full else [r for r in stored if last is None or r.t > last.t])
        table.apply(e.drain(), full)
        blob = dump_state(e.state)
    return table


@settings(max_examples=60, deadline=None)
@given(
    temperatures,
    gaps,
    st.integers(min_value=0, max_value=2),
    st.integers(min_value=1, max_value=8),
    st.randoms(use_true_random=False),
)
def test_a_shuffled_backlog_gives_the_alerts_of_in_order_arrival(temps, steps, which, size, rnd):
    readings = build(temps, steps, cryo=which == 1)
    batches = [readings[i : i + size] for i in range(0, len(readings), size)]
    in_order = arrive(batches, PROFILES[which]).final()
    shuffled = list(batches)
    rnd.shuffle(shuffled)
    assert arrive(shuffled, PROFILES[which]).final() == in_order
    # Arriving as one backlog is the same again.
    assert arrive([readings], PROFILES[which]).final() == in_order


def test_the_memory_table_sees_a_real_alert():
    temps = [5.0] * 5 + [16.0] * 3 + [5.0] * 5
    table = arrive([build(temps, [5] * 120)], FRESH)
    assert [row[:3] for row in table.final()] == [("temperature_high", "resolved", "critical")]
