"""End to end with nothing stood in: Mosquitto -> `celltrail bridge` -> `celltrail serve` -> PostgreSQL.

Every reading published ends in the readings table exactly once (count and checksum per logger, then the
exact set), through duplicates, out-of-order backlogs, a bridge killed with SIGKILL and a backend killed
and restarted mid-stream; bad payloads end as dead letters with their reasons.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from telemetry_e2e_support import (
    Expected,
    Stack,
    base_time,
    binary_message,
    json_message,
    reading_count,
    telemetry_topic,
    until,
    verify_exactly_once,
)

from firmware_bridge.mqtt_clients import Publisher
from firmware_bridge.settings import load_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(database_url: str, mqtt_broker, server_dir: Path) -> Iterator[Stack]:
    running = Stack(server_dir, database_url, mqtt_broker.url)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def publisher(mqtt_broker) -> Iterator[Publisher]:
    endpoint = load_settings(env={}, mqtt_url=mqtt_broker.url).mqtt_endpoint()
    pub = Publisher(endpoint, f"e2e-pub-{uuid.uuid4().hex[:8]}", max_outstanding=500)
    assert pub.start(10.0), "publisher could not connect"
    yield pub
    pub.stop()


def _ids(prefix: str, count: int) -> list[str]:
    tag = uuid.uuid4().hex[:3].upper()
    return [f"LGR-{prefix}{tag}{i:02d}" for i in range(count)]


async def test_json_binary_duplicates_backlogs_and_bad_payloads(stack, publisher, database_url):
    live, backlog, binary, stranger = _ids("J", 4)
    stack.start_backend()
    stack.prepare([live, backlog, binary])
    stack.start_bridge()
    base = base_time()
    expected: Expected = {}
    messages: list[tuple[str, bytes]] = []

    for i in range(50):
        ts, temp = base + timedelta(seconds=30 * i), round(4 + (i % 9) / 10, 2)
        expected[(live, ts)] = temp
        messages.append((telemetry_topic(live), json_message(live, [(ts, temp)])))
        if i % 5 == 0:
            messages.append(messages[-1])  # QoS 1 duplicate delivery
    samples = [(base + timedelta(minutes=m), round(-150 - (m % 13) / 4, 2)) for m in range(300)]
    expected.update({(backlog, ts): t for ts, t in samples})
    chunks = [samples[i : i + 100] for i in range(0, 300, 100)]
    random.Random(7).shuffle(chunks[1])
    for chunk in reversed(chunks):  # newest first, as some firmware uploads
        messages.append((telemetry_topic(backlog), json_message(backlog, chunk)))
    messages.append(messages[-2])  # a whole backlog chunk again
    for i in range(20):
        first = base + timedelta(seconds=60 * i)
        expected[(binary, first)] = (2000 + i) / 100
        messages.append((telemetry_topic(binary, True), binary_message(binary, first, 60, [2000 + i])))
    burst_start = base + timedelta(hours=2)
    burst = [500 + (i * 7) % 40 for i in range(100)]
    expected.update({(binary, burst_start + timedelta(seconds=60 * i)): c / 100 for i, c in enumerate(burst)})
    messages.append((telemetry_topic(binary, True), binary_message(binary, burst_start, 60, burst)))
    messages.append(messages[-1])

    corrupted = bytearray(binary_message(binary, base + timedelta(days=-1), 60, [100, 200]))
    corrupted[6] ^= 0x5A
    bad = [
        (telemetry_topic(live), json_message(live, [(base + timedelta(hours=5), -300.0)])),
        (telemetry_topic(live), json_message(live, [(base + timedelta(hours=5), 4.0)])[:25]),
        (telemetry_topic(binary, True), bytes(corrupted)),
        (telemetry_topic(live), json_message(backlog, [(base + timedelta(hours=5), 4.0)])),
        (
            telemetry_topic(stranger),
            json_message(stranger, [(base, 5.0), (base + timedelta(minutes=1), 5.1)]),
        ),
    ]
    for topic, payload in messages + bad:
        publisher.publish(topic, payload)
    assert publisher.flush(20.0)

    async def all_stored() -> bool:
        return await reading_count(database_url, [live, backlog, binary]) >= len(expected)

    async def letters() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(
                "SELECT kind, reason, topic, logger_id, origin FROM dead_letters "
                "WHERE logger_id = ANY($1::text[]) OR topic LIKE ANY($2::text[]) ORDER BY kind",
                [live, backlog, binary, stranger],
                [f"%/{x}/%" for x in (live, backlog, binary, stranger)],
            )
        finally:
            await conn.close()

    async def all_dead_lettered() -> bool:
        return len(await letters()) >= 6

    await until(all_stored, 60, f"{len(expected)} readings\n{stack.log('bridge')}\n{stack.log('backend')}")
    await until(all_dead_lettered, 30, "six dead letters")
    await verify_exactly_once(database_url, expected, "formats")
    found = await letters()
    print("dead letters:", [(r["kind"], r["reason"][:60]) for r in found])
    assert [r["kind"] for r in found] == [
        "crc",
        "implausible",
        "logger_mismatch",
        "malformed",
        "unknown_logger",
        "unknown_logger",
    ]
    assert all(r["reason"] for r in found)
    assert {r["origin"] for r in found if r["kind"] == "unknown_logger"} == {"reading"}
    assert found[-1]["reason"].startswith(f"unknown logger {stranger}")


def _stream(loggers: list[str], messages: int, per_message: int) -> tuple[list[tuple[str, bytes]], Expected]:
    base = base_time() - timedelta(days=1)
    out: list[tuple[str, bytes]] = []
    expected: Expected = {}
    for m in range(messages):
        logger = loggers[m % len(loggers)]
        readings = [
            (base + timedelta(seconds=10 * (m * per_message + i)), round(2 + ((m * 7 + i) % 60) / 10, 2))
            for i in range(per_message)
        ]
        expected.update({(logger, ts): t for ts, t in readings})
        out.append((telemetry_topic(logger), json_message(logger, readings)))
    return out, expected


def _feed(
    publisher: Publisher, messages: list[tuple[str, bytes]], stop: threading.Event, halfway: threading.Event
) -> threading.Thread:
    """Publish the first half, wait for `halfway`, then the rest: the fault lands mid-stream for sure."""

    def run() -> None:
        for n, (topic, payload) in enumerate(messages):
            if n == len(messages) // 2:
                halfway.wait(60)
            if stop.is_set():
                return
            publisher.publish(topic, payload)
            if n % 10 == 0:
                stop.wait(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _buffered_batches(directory: Path) -> int:
    path = directory / "bridge-buffer" / "queue.sqlite3"
    if not path.exists():
        return 0
    # A reader beside the bridge's writer: the buffer runs in WAL mode.
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM batches").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


async def test_bridge_killed_mid_stream_loses_nothing_and_stores_nothing_twice(
    stack, publisher, database_url
):
    loggers = _ids("K", 8)
    stack.start_backend()
    stack.prepare(loggers)
    stack.start_bridge()
    messages, expected = _stream(loggers, 1500, 4)
    stop, halfway = threading.Event(), threading.Event()
    feeder = _feed(publisher, messages, stop, halfway)
    try:

        async def a_quarter() -> bool:
            return await reading_count(database_url, loggers) >= len(expected) // 4

        await until(a_quarter, 60, "a quarter stored\n" + stack.log("bridge"))
        stack.kill_bridge()
        killed_at = await reading_count(database_url, loggers)
        halfway.set()
        stack.start_bridge()
        feeder.join(60)
        assert publisher.flush(30.0)

        async def everything() -> bool:
            return await reading_count(database_url, loggers) >= len(expected)

        await until(everything, 90, "every reading after the restart\n" + stack.log("bridge"))
    finally:
        stop.set()
        halfway.set()
    assert killed_at < len(expected)
    print(f"bridge SIGKILLed with {killed_at} of {len(expected)} readings stored")
    await verify_exactly_once(database_url, expected, "bridge killed")


async def test_backend_killed_and_restarted_mid_stream_loses_nothing(stack, publisher, database_url):
    loggers = _ids("B", 8)
    stack.start_backend()
    stack.prepare(loggers)
    stack.start_bridge()
    messages, expected = _stream(loggers, 1500, 4)
    stop, halfway = threading.Event(), threading.Event()
    feeder = _feed(publisher, messages, stop, halfway)
    try:

        async def a_quarter() -> bool:
            return await reading_count(database_url, loggers) >= len(expected) // 4

        await until(a_quarter, 60, "a quarter stored\n" + stack.log("bridge"))
        assert stack.backend is not None
        stack.backend.kill()  # SIGKILL: a batch in flight is rolled back, or committed with its answer lost
        stack.backend.wait(10)
        down_at = await reading_count(database_url, loggers)
        halfway.set()

        async def bridge_buffers() -> bool:
            return _buffered_batches(stack.directory) > 0

        await until(bridge_buffers, 30, "the bridge to buffer on disk while the backend is down")
        stack.start_backend()
        feeder.join(60)
        assert publisher.flush(30.0)

        async def everything() -> bool:
            return await reading_count(database_url, loggers) >= len(expected)

        await until(everything, 90, "every reading after the backend returned\n" + stack.log("bridge"))
    finally:
        stop.set()
        halfway.set()
    assert down_at < len(expected)
    print(f"backend SIGKILLed with {down_at} of {len(expected)} readings stored")
    await verify_exactly_once(database_url, expected, "backend killed")
