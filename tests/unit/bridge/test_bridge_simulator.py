"""The logger fleet: deterministic, decodable by the bridge, faults present, 10,000 loggers cheaply."""

from __future__ import annotations

import threading
import tracemalloc
from collections import Counter
from datetime import UTC, datetime

from firmware_bridge import payloads, simulator, thermal, topics
from firmware_bridge.ingest_contract import DeadLetter

START = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


def run(fleet: simulator.Fleet, hours: float) -> list[simulator.Outgoing]:
    out = fleet.birth_messages(START)
    out += fleet.advance(START + hours * 3600)
    out += fleet.shutdown_messages(START + hours * 3600)
    return out


def decode_all(messages: list[simulator.Outgoing], at: float):
    received = datetime.fromtimestamp(at, UTC)
    return [payloads.decode_message(m.topic, m.payload, received, retained=m.retain) for m in messages]


def test_logger_ids():
    assert simulator.logger_id(1) == "LGR-0001"
    assert simulator.logger_id(12_345) == "LGR-12345"
    assert topics.is_valid_logger_id(simulator.logger_id(10_000))


def test_same_seed_same_messages():
    a = run(simulator.Fleet(20, 60, START, seed=3), hours=6)
    b = run(simulator.Fleet(20, 60, START, seed=3), hours=6)
    c = run(simulator.Fleet(20, 60, START, seed=4), hours=6)
    assert a == b
    assert a != c


def test_everything_decodes_and_the_set_of_readings_survives_the_faults():
    faults = simulator.FaultRates().scaled(20)  # plenty of duplicates, reorders, offline periods
    fleet = simulator.Fleet(30, 60, START, seed=5, faults=faults, binary_share=0.3)
    messages = run(fleet, hours=24)
    results = decode_all(messages, START + 24 * 3600)
    assert not [r for r in results if isinstance(r, DeadLetter)]
    keys = [(r.logger_id, r.ts) for d in results if isinstance(d, payloads.Decoded) for r in d.readings]
    stats = fleet.stats
    assert len(set(keys)) == stats.readings  # duplicates deliver nothing new, nothing goes missing
    assert len(keys) > len(set(keys))  # and duplicates did happen
    assert stats.reordered > 0
    assert stats.backlog_flushes > 0
    assert stats.excursions > 0
    kinds = Counter(topics.parse_topic(m.topic).kind for m in messages)  # type: ignore[union-attr]
    assert kinds[topics.Kind.TELEMETRY_BIN] > 0
    assert kinds[topics.Kind.TELEMETRY] > 0
    offline = [
        d.status for d in results if isinstance(d, payloads.Decoded) and d.status and not d.status.online
    ]
    assert len(offline) > 30  # offline periods, plus everybody at shutdown


def test_backlogs_arrive_as_multi_reading_messages_some_out_of_order():
    fleet = simulator.Fleet(20, 60, START, seed=9, faults=simulator.FaultRates(offline_per_day=20))
    results = decode_all(run(fleet, hours=24), START + 24 * 3600)
    backlogs = [d.readings for d in results if isinstance(d, payloads.Decoded) and len(d.readings) > 1]
    assert backlogs
    assert any([r.ts for r in b] != sorted(r.ts for r in b) for b in backlogs)


def test_fresh_boxes_show_excursions_when_lids_open():
    fleet = simulator.Fleet(50, 60, START, seed=11, faults=simulator.FaultRates(excursions_per_day=10))
    results = decode_all(run(fleet, hours=24), START + 24 * 3600)
    fresh = {lg.logger_id for lg in fleet.loggers if lg.model.profile is thermal.Profile.FRESH}
    temps = [
        r.temp_c
        for d in results
        if isinstance(d, payloads.Decoded)
        for r in d.readings
        if r.logger_id in fresh
    ]
    assert 2.0 < sorted(temps)[len(temps) // 2] < 8.0  # mostly in range
    assert max(temps) > 8.0  # with excursions


def test_batteries_drain_and_dead_loggers_fall_silent():
    faults = simulator.FaultRates(fast_drain_share=1.0, excursions_per_day=0, offline_per_day=0)
    fleet = simulator.Fleet(10, 600, START, seed=2, faults=faults)
    results = decode_all(fleet.advance(START + 5 * 86400), START + 5 * 86400)
    assert fleet.stats.dead_loggers == 10
    assert fleet.next_due() is None
    low = [r for d in results if isinstance(d, payloads.Decoded) for r in d.readings if r.battery_pct == 0]
    assert low or any(r.low_battery for d in results if isinstance(d, payloads.Decoded) for r in d.readings)


def test_bad_payload_injection_makes_dead_letters():
    faults = simulator.FaultRates(bad_payload_chance=0.2, duplicate_chance=0, reorder_chance=0)
    fleet = simulator.Fleet(20, 60, START, seed=1, faults=faults, binary_share=0.5)
    results = decode_all(fleet.advance(START + 3600), START + 3600)
    kinds = Counter(r.kind for r in results if isinstance(r, DeadLetter))
    assert set(kinds) <= {"crc", "malformed", "implausible"}
    assert sum(kinds.values()) == fleet.stats.bad_payloads > 0


def test_ten_thousand_loggers_in_one_process_with_modest_memory():
    tracemalloc.start()
    try:
        fleet = simulator.Fleet(10_000, 60, START, seed=1, faults=simulator.FaultRates().scaled(0))
        messages = fleet.advance(START + 60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    senders = {topics.parse_topic(m.topic).logger_id for m in messages}  # type: ignore[union-attr]
    assert len(senders) == 10_000  # every logger sampled once in its first interval
    assert peak < 64 * 1024 * 1024


def test_sim_clock_runs_fast_but_never_ahead_of_the_wall():
    wall = [1_000_000.0]
    clock = simulator.SimClock(speedup=100, history_s=3600, wall=lambda: wall[0])
    assert clock.now() == 1_000_000.0 - 3600
    wall[0] += 10
    assert clock.now() == 1_000_000.0 - 3600 + 1000
    wall[0] += 100
    assert clock.now() == wall[0]  # caught up: real time from here on


def test_run_fleet_publishes_births_samples_and_goodbyes():
    published: list[simulator.Outgoing] = []
    clock = simulator.SimClock(speedup=1, history_s=0)
    fleet = simulator.Fleet(5, 0.01, clock.sim_start, seed=1, faults=simulator.FaultRates().scaled(0))
    stats = simulator.run_fleet(fleet, clock, published.append, threading.Event(), duration_s=0.2)
    statuses = [m for m in published if m.topic.endswith("/status")]
    assert len(statuses) == 10
    assert all(m.retain for m in statuses)
    assert stats.readings > 5
