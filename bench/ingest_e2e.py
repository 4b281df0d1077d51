"""End-to-end telemetry ingest: publisher -> Mosquitto -> `celltrail bridge` -> `celltrail serve` ->
PostgreSQL, every piece a real process on this machine.

A bare-socket publisher (bench/mqtt_raw.py) in its own process publishes QoS 1 telemetry for 1,000
loggers, with one reading per message and with ten: first at the target rate for 60 s (6,000 msg/s;
2,500 msg/s = 25,000 readings/s), then a short burst as fast as the broker takes it, which the pipeline
drains at its capacity. Throughput is publish start to the moment ``count(*)`` of the readings table
reaches what was published; loss is published minus stored; lag is ``stored_at - ts`` per reading (each
reading's ts is its publish time). Beside them, in the same run: the broker alone (the same publisher and
payloads into a bare-socket subscriber), the backend alone (HTTP batches from one client) and the
database alone (the same rows with COPY from one connection, and through the backend's own batch
statement, one connection).

``run(smoke)`` returns one dict per figure; ``python -m bench.ingest_e2e [--smoke]`` prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from backend.db.repo import readings as readings_repo
from bench.stack import ADMIN_PASSWORD, Celltrail, mosquitto, postgres
from firmware_bridge import topics
from firmware_bridge.settings import MqttEndpoint

LOGGERS = 1000
BRIDGE_PASSWORD = "bench-bridge-password"
TARGETS = {1: ("msg/s", 6000), 10: ("readings/s", 25000)}
# The bridge's default batch (firmware_bridge/settings.py); the alone figures use the same size.
BATCH = 2000
# Topics of the broker-alone ceiling: the same shape, but not under the bridge's subscriptions.
CEILING_PREFIX = "bench/ceiling"


def _create_bridge_account(stack: Celltrail) -> None:
    token = stack.post("/api/v1/auth/login", {"username": "admin", "password": ADMIN_PASSWORD})["token"]
    account = {
        "username": "bridge",
        "full_name": "Bridge",
        "password": BRIDGE_PASSWORD,
        "roles": ["bridge"],
        "sites": ["HQ"],
    }
    stack.post("/api/v1/users", account, str(token))


# -- the publisher process -------------------------------------------------------------------------


def _publish_process(
    endpoint: MqttEndpoint,
    per_message: int,
    seconds: float,
    rate: float | None,
    go: Any,
    results: Any,
    prefix: str = topics.PREFIX,
) -> None:
    """Publish for `seconds` at `rate` msg/s, or as fast as the broker confirms (None), from a bare-socket
    publisher (a paho one tops out near 5,000 msg/s here, below the target). Each reading's ts is its
    publish time; the ten
    readings of a message are 10 µs apart, the last one now, so every (logger, ts) is unique."""
    from bench.mqtt_raw import RawPublisher

    publisher = RawPublisher(endpoint.host, endpoint.port, f"bench-pub-{per_message}-{os.getpid()}")
    topics_by_logger = [f"{prefix}/LGR-{i + 1:04d}/telemetry".encode() for i in range(LOGGERS)]
    clock = _IsoClock()
    go.wait(60)
    started = time.time()
    ends = time.monotonic() + seconds
    messages = 0
    last_us = 0
    began = time.monotonic()
    while time.monotonic() < ends:
        if rate is not None:
            # Paced: the next chunk leaves when the offered rate allows it.
            due = began + messages / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
        # One timestamp per chunk of 100 messages (each logger appears at most once in a chunk), at least
        # 100 µs after the previous chunk's.
        now_us = max(int(time.time() * 1e6), last_us + 100)
        last_us = now_us
        stamps = [clock.iso(now_us - (per_message - 1 - i) * 10) for i in range(per_message)]
        chunk = []
        for _ in range(100):
            n = messages % LOGGERS
            readings = ",".join(
                f'{{"ts":"{stamps[i]}","temp_c":{4 + (messages + i) % 40 / 10}}}' for i in range(per_message)
            )
            payload = f'{{"logger_id":"LGR-{n + 1:04d}","readings":[{readings}],"battery_pct":80}}'
            chunk.append((topics_by_logger[n], payload.encode()))
            messages += 1
        publisher.publish_many(chunk)
    publisher.flush(300.0)
    results.put((started, time.time(), messages))
    publisher.close()


class _IsoClock:
    """RFC 3339 UTC text for a time in microseconds, formatting the seconds part once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, unix_us: int) -> str:
        second, micro = divmod(unix_us, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{micro:06d}Z"


# -- measuring -------------------------------------------------------------------------------------


async def _count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM readings"))
    finally:
        await conn.close()


async def _lag_and_reset(url: str) -> tuple[float, float]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - ts)) AS p50,
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - ts)) AS p99
               FROM readings"""
        )
        await conn.execute("TRUNCATE readings")
        await conn.execute("DELETE FROM outbox WHERE kind = 'readings'")
    finally:
        await conn.close()
    assert row is not None
    return float(row["p50"]), float(row["p99"])


def _end_to_end(
    url: str, endpoint: MqttEndpoint, per_message: int, seconds: float, rate: float | None
) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    publisher = ctx.Process(target=_publish_process, args=(endpoint, per_message, seconds, rate, go, results))
    publisher.start()
    time.sleep(2.0)  # let the publisher connect before the clock starts
    go.set()
    started, published_until, messages = results.get(timeout=seconds + 180)
    publisher.join(30)
    expected = messages * per_message
    stored = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        stored = asyncio.run(_count(url))
        if stored >= expected:
            break
        time.sleep(0.25)
    finished = time.time()
    # A few extra polls: anything beyond `expected` would be a double.
    time.sleep(1.0)
    stored = asyncio.run(_count(url))
    p50, p99 = asyncio.run(_lag_and_reset(url))
    elapsed = finished - started
    return {
        "messages": messages,
        "readings": expected,
        "stored": stored,
        "offered_msg_s": messages / (published_until - started),
        "msg_s": messages / elapsed,
        "readings_s": expected / elapsed,
        "lost": expected - stored,
        "p50": p50,
        "p99": p99,
    }


def _rows(count: int) -> list[tuple[object, ...]]:
    start = datetime.now(UTC) - timedelta(days=1)
    received = datetime.now(UTC)
    return [
        (f"LGR-{n % LOGGERS + 1:04d}", start + timedelta(milliseconds=n), 4 + n % 40 / 10, 80, None, received)
        for n in range(count)
    ]


async def _database_alone(url: str, count: int) -> tuple[float, float]:
    """(COPY rows/s, backend batch statement rows/s) for `count` rows from one connection."""
    rows = _rows(count)
    conn = await asyncpg.connect(url)
    try:
        began = time.perf_counter()
        await conn.copy_records_to_table(
            "readings",
            records=rows,
            columns=["logger_id", "ts", "temp_c", "battery_pct", "lid_open", "received_at"],
        )
        copy_rate = count / (time.perf_counter() - began)
        await conn.execute("TRUNCATE readings")
        began = time.perf_counter()
        for i in range(0, count, BATCH):
            chunk = rows[i : i + BATCH]
            columns = readings_repo.ReadingColumns(
                logger_id=[str(r[0]) for r in chunk],
                ts=[r[1] for r in chunk],  # type: ignore[misc]
                temp_c=[r[2] for r in chunk],  # type: ignore[misc]
                battery_pct=[r[3] for r in chunk],  # type: ignore[misc]
                lid_open=[None for _ in chunk],
                received_at=[r[5] for r in chunk],  # type: ignore[misc]
            )
            async with conn.transaction():
                await readings_repo.insert_batch(conn, columns, f"bench-{i}", "bench")
        batch_rate = count / (time.perf_counter() - began)
        await conn.execute("TRUNCATE readings")
        await conn.execute("DELETE FROM outbox WHERE kind = 'readings'")
    finally:
        await conn.close()
    return copy_rate, batch_rate


def _backend_alone(base_url: str, batches: int) -> float:
    """Readings/s through `POST /api/v1/ingest/telemetry` from one client sending BATCH-reading batches one
    after another, as one bridge does: the backend's and the database's share of the pipeline."""
    import httpx

    from firmware_bridge.ingest_contract import INGEST_PATH, IngestBatch, IngestReading, encode_batch

    start = datetime.now(UTC) - timedelta(days=3)
    bodies = []
    for b in range(batches):
        readings = [
            IngestReading(
                logger_id=f"LGR-{n % LOGGERS + 1:04d}",
                ts=start + timedelta(milliseconds=n),
                temp_c=4 + n % 40 / 10,
                battery_pct=80,
                received_at=start,
            )
            for n in range(b * BATCH, (b + 1) * BATCH)
        ]
        bodies.append(encode_batch(IngestBatch(batch_id=f"alone-{b}", bridge_id="bench", readings=readings)))
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = {"username": "bridge", "password": BRIDGE_PASSWORD}
        token = client.post("/api/v1/auth/login", json=login).json()["token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/msgpack"}
        began = time.perf_counter()
        for body in bodies:
            response = client.post(INGEST_PATH, content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"ingest answered {response.status_code}: {response.text}")
        return batches * BATCH / (time.perf_counter() - began)


async def _register_loggers(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO loggers (id, owner_site) SELECT 'LGR-' || lpad(g::text, 4, '0'), 'HQ' "
            "FROM generate_series(1, $1::int) g",
            LOGGERS,
        )
    finally:
        await conn.close()


def _broker_alone(endpoint: MqttEndpoint, per_message: int, seconds: float) -> dict[str, float]:
    """The broker's ceiling in the same run: the same publisher and payloads, on topics the bridge does
    not subscribe to, into a bare-socket subscriber instead of the bridge."""
    from bench.mqtt_raw import RawSubscriber

    counted = {"messages": 0, "first": 0.0, "last": 0.0}

    def on_messages(count: int, size: int) -> None:
        now = time.perf_counter()
        if not counted["messages"]:
            counted["first"] = now
        counted["messages"] += count
        counted["last"] = now

    subscriber = RawSubscriber(
        endpoint.host,
        endpoint.port,
        f"bench-ceiling-{os.getpid()}",
        f"{CEILING_PREFIX}/+/telemetry",
        on_messages,
    )
    try:
        ctx = mp.get_context("spawn")
        go, results = ctx.Event(), ctx.Queue()
        publisher = ctx.Process(
            target=_publish_process,
            args=(endpoint, per_message, seconds, None, go, results, CEILING_PREFIX),
        )
        publisher.start()
        time.sleep(1.0)
        go.set()
        _, _, messages = results.get(timeout=seconds + 180)
        publisher.join(30)
        deadline = time.monotonic() + 60
        while counted["messages"] < messages and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        subscriber.close()
    elapsed = max(counted["last"] - counted["first"], 1e-9)
    return {
        "messages": messages,
        "received": counted["messages"],
        "msg_s": counted["messages"] / elapsed,
        "readings_s": counted["messages"] * per_message / elapsed,
    }


def run(smoke: bool) -> list[dict[str, object]]:
    paced_s = 2.0 if smoke else 60.0
    burst_s = {1: 0.5, 10: 0.2} if smoke else {1: 5.0, 10: 2.0}
    cores = os.cpu_count()
    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-e2e-"))
    os.chmod(folder, 0o755)
    figures: list[dict[str, object]] = []
    try:
        with postgres(folder) as url, mosquitto(folder) as endpoint:
            for per_message in (1, 10):
                ceiling = _broker_alone(endpoint, per_message, burst_s[1])
                figures += _ceiling_figures(per_message, ceiling, cores)
            stack = Celltrail(
                folder,
                url,
                endpoint,
                bridge_password=BRIDGE_PASSWORD,
                client_id=f"bench-bridge-{os.getpid()}",
            )
            try:
                stack.start_backend()
                _create_bridge_account(stack)
                asyncio.run(_register_loggers(url))
                stack.start_bridge(endpoint)
                for per_message, (_unit, target) in TARGETS.items():
                    # The target rate offered for paced_s: does the pipeline keep up, and with what lag?
                    rate = target / per_message
                    result = _end_to_end(url, endpoint, per_message, paced_s, rate)
                    figures += _figures(per_message, result, paced_s, cores, rate)
                for per_message in TARGETS:
                    # A burst as fast as the broker takes it: the pipeline's capacity, draining a backlog.
                    result = _end_to_end(url, endpoint, per_message, burst_s[per_message], None)
                    figures += _figures(per_message, result, burst_s[per_message], cores, None)
                batches = 10 if smoke else 100
                alone = _backend_alone(stack.url, batches)
                asyncio.run(_lag_and_reset(url))
                figures.append(
                    {
                        "figure": f"backend alone, HTTP ingest ({BATCH}/batch)",
                        "unit": "readings/s",
                        "value": round(alone),
                        "conditions": f"{batches} msgpack batches one after another from one httpx client, "
                        f"as one bridge sends them; load average {_load()}",
                    }
                )
            finally:
                stack.stop()
            count = 20_000 if smoke else 200_000
            copy_rate, batch_rate = asyncio.run(_database_alone(url, count))
            conditions = f"{count} rows, one asyncpg connection, durable PostgreSQL, {cores} cores"
            figures.append(
                {
                    "figure": "database alone, COPY",
                    "unit": "readings/s",
                    "value": round(copy_rate),
                    "conditions": conditions,
                }
            )
            figures.append(
                {
                    "figure": f"database alone, ingest statement ({BATCH}/batch)",
                    "unit": "readings/s",
                    "value": round(batch_rate),
                    "conditions": conditions + "; unnest + shipment link + outbox",
                }
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def _ceiling_figures(per_message: int, r: dict[str, float], cores: int | None) -> list[dict[str, object]]:
    label = "single-reading msgs" if per_message == 1 else f"{per_message}-reading msgs"
    conditions = (
        f"the same publisher and payloads -> Mosquitto -> bare-socket QoS 1 subscriber, "
        f"{int(r['messages'])} messages, {int(r['received'])} received; {cores} cores "
        f"(load average {_load()})"
    )
    return [
        {
            "figure": f"broker alone, {label}",
            "unit": "msg/s",
            "value": round(r["msg_s"]),
            "conditions": conditions,
        },
        {
            "figure": f"broker alone, {label}",
            "unit": "readings/s",
            "value": round(r["readings_s"]),
            "conditions": conditions,
        },
    ]


def _figures(
    per_message: int, r: dict[str, float], seconds: float, cores: int | None, rate: float | None
) -> list[dict[str, object]]:
    label = "single-reading msgs" if per_message == 1 else f"{per_message}-reading msgs"
    label += f", {rate:,.0f} msg/s offered" if rate is not None else ", burst as fast as the broker takes it"
    unit, target = TARGETS[per_message]
    conditions = (
        f"publisher process (bare-socket QoS 1) -> Mosquitto -> celltrail bridge (batch {BATCH}/50 ms) -> "
        f"celltrail serve (1 worker) -> PostgreSQL (durable), {seconds:g} s of publishing, "
        f"{int(r['messages'])} messages offered at {r['offered_msg_s']:.0f} msg/s, {LOGGERS} loggers; rate = "
        f"messages / (first publish to last row stored); {cores} cores shared by all "
        f"(load average {_load()}); target >= {target} {unit}"
    )
    lag = "stored_at - ts per reading (ts = publish time)"
    return [
        {
            "figure": f"end to end, {label}",
            "unit": "msg/s",
            "value": round(r["msg_s"]),
            "conditions": conditions,
        },
        {
            "figure": f"end to end, {label}",
            "unit": "readings/s",
            "value": round(r["readings_s"]),
            "conditions": conditions,
        },
        {
            "figure": f"end to end, {label}, lost",
            "unit": "readings",
            "value": int(r["lost"]),
            "conditions": f"{int(r['readings'])} published and confirmed, {int(r['stored'])} stored",
        },
        {
            "figure": f"end to end, {label}, lag p50",
            "unit": "s",
            "value": round(r["p50"], 3),
            "conditions": lag,
        },
        {
            "figure": f"end to end, {label}, lag p99",
            "unit": "s",
            "value": round(r["p99"], 3),
            "conditions": lag,
        },
    ]


def _load() -> str:
    """The machine's 1-minute load average: other work on it shows in every figure here."""
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="2 s per shape: checks it runs, not how fast")
    figures = run(parser.parse_args().smoke)
    for f in figures:
        print(f"{f['figure']:<52} {f['value']:>10} {f['unit']:<11} {f['conditions']}")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
