"""The whole system as real processes for fault scenarios, with servers a test may break: a private
PostgreSQL and a private, persistent Mosquitto (own ports, own data directories), `celltrail serve` and
`celltrail bridge` (started by bench.stack), loggers on shipments in transit, two scanning devices with
the scanner's own offline queue, and the final count every scenario ends with."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from backend.backup import verify_chains
from backend.db.migrate import migrate_url
from backend.embedded.ports import free_port, port_open
from backend.embedded.postgres import EmbeddedPostgres
from backend.services import record_keys
from bench.stack import Celltrail, execute, wait
from firmware_bridge import topics
from firmware_bridge.mqtt_clients import Publisher
from firmware_bridge.settings import MqttEndpoint
from scanner.client import BackendClient
from scanner.queue import ScanQueue, ScanState
from scanner.sender import Drain, Sender
from tests.integration.scanner.real_backend import ADMIN_PASSWORD, PASSWORD, World, build_world

BRIDGE_PASSWORD = "bridge-password-for-faults"
SPIKE_C = 16.5  # above the fresh profile's critical limit (15 °C): one critical alert per shipment
Expected = dict[tuple[str, datetime], float]


# -- servers a test may stop ---------------------------------------------------------------------------


class PrivatePostgres:
    """A cluster of this test's own, restartable on the same port and data directory."""

    def __init__(self, folder: Path) -> None:
        # Durable (fsync, synchronous_commit on) like production and `celltrail up`: with the test
        # suite's fast settings a crash loses commits the backend already answered 201 for, which this
        # suite caught as a "lost" pickup scan. A fault test must run what users run.
        self.cluster = EmbeddedPostgres(folder / "pgdata", fast_unsafe=False)
        self.url = self.cluster.database_url("celltrail")

    def start(self) -> None:
        self.cluster.start()

    def create(self) -> None:
        asyncio.run(execute(self.cluster.url, 'CREATE DATABASE "celltrail"'))
        asyncio.run(migrate_url(self.url))

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean shutdown (connections cut, transactions rolled back); `immediate`: a crash,
        recovered from the WAL at the next start."""
        self.cluster.stop(mode)


class PrivateMosquitto:
    """Mosquitto on a port of its own with persistence on: queued QoS 1 messages of persistent
    sessions survive a restart, as with the production configuration."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        folder.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
            f"persistence true\npersistence_location {folder}/\n"
            "max_queued_messages 0\nmax_inflight_messages 0\n" + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint = MqttEndpoint("127.0.0.1", self.port, False, None, None)
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = (self.folder / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([binary, "-c", str(self.conf)], stdout=log, stderr=log)
        wait(lambda: port_open("127.0.0.1", self.port, 0.2), 10, "mosquitto listening")

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file on the way out."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


# -- the system ---------------------------------------------------------------------------------------


@dataclass
class Fleet:
    """Loggers, each travelling with a packed shipment of its own case."""

    loggers: list[str]
    shipments: dict[str, str]  # logger -> shipment
    cases: dict[str, str]  # shipment -> COI
    departure: datetime
    canary: str  # a registered logger on no shipment, for the after-recovery check


@dataclass
class System:
    folder: Path
    postgres_url: str
    broker: MqttEndpoint
    celltrail: Celltrail
    world: World
    backend: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def start_backend(self) -> None:
        self.celltrail.start_backend()
        self.backend = self.celltrail.processes[-1]

    def kill_backend(self) -> None:
        assert self.backend is not None
        self.backend.send_signal(signal.SIGKILL)
        self.backend.wait(10)

    def bridge(self) -> subprocess.Popen[bytes]:
        return next(p for p in reversed(self.celltrail.processes) if "bridge" in p.args)  # type: ignore[operator]

    def kill_bridge(self) -> None:
        process = self.bridge()
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.celltrail.processes.remove(process)

    def device(self, username: str, clock_skew: timedelta = timedelta()) -> Device:
        return Device(self.folder / "devices", self.celltrail.url, username, clock_skew)

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"{self.celltrail.url}/healthz", timeout=3) as response:
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except OSError:
            return {"status": "unreachable"}

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _env(celltrail: Celltrail, admin_password: str) -> None:
    celltrail.env.update(
        {
            "CELLTRAIL_ADMIN_PASSWORD": admin_password,
            "CELLTRAIL_BRIDGE_BATCH_MS": "20",
            "CELLTRAIL_BRIDGE_RETRY_MAX_S": "0.5",
            "CELLTRAIL_BRIDGE_HTTP_TIMEOUT_S": "5",
            "CELLTRAIL_BRIDGE_SESSION_EXPIRY_S": "600",
            "CELLTRAIL_BROKER_CHECK_SECONDS": "1",
            "CELLTRAIL_HOUSEKEEPING_SECONDS": "2",
        }
    )


@contextmanager
def system(folder: Path, database_url: str, broker: MqttEndpoint) -> Iterator[System]:
    """Backend and bridge on the given servers, the world of people and sites, the bridge's account."""
    os.chmod(folder, 0o755)
    celltrail = Celltrail(
        folder,
        database_url,
        broker,
        bridge_password=BRIDGE_PASSWORD,
        client_id=f"fault-{uuid.uuid4().hex[:8]}",
    )
    _env(celltrail, ADMIN_PASSWORD)
    # The backend links chains with this key and the audits verify with it (a key folder of its own:
    # the system folder stays open to the PostgreSQL user).
    key_file = folder / "keys" / "record.key"
    celltrail.env["CELLTRAIL_RECORD_KEY_FILE"] = str(key_file)
    record_keys.configure(record_keys.add_key(key_file))
    client = httpx.Client(base_url=celltrail.url, timeout=30)
    try:
        celltrail.start_backend()
        world = build_world(client)
        world.ok(
            "admin",
            "POST",
            "/api/v1/users",
            201,
            json={
                "username": "bridge",
                "full_name": "Bridge",
                "password": BRIDGE_PASSWORD,
                "roles": ["bridge"],
                "sites": ["CTA"],
            },
        )
        running = System(folder, database_url, broker, celltrail, world, celltrail.processes[-1])
        celltrail.start_bridge(broker)
        yield running
    finally:
        celltrail.stop()
        client.close()


def fleet(system_: System, count: int, hours_ago: float = 1.0) -> Fleet:
    """`count` loggers, each on a shipment (apheresis bag, USZ-APH to CTA, fresh profile) packed and
    planned to leave `hours_ago`, so readings since then belong to it."""
    world = system_.world
    tag = uuid.uuid4().hex[:4].upper()
    departure = (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(microsecond=0)
    expiry = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    loggers, ships, cases = [], {}, {}
    for n in range(count):
        logger = f"LGR-F{tag}{n:02d}"
        world.ok(
            "admin",
            "POST",
            "/api/v1/loggers",
            201,
            json={
                "id": logger,
                "owner_site": "CTA",
                "issue_broker_password": False,
                "calibration_due": "2030-01-01",
            },
        )
        coi = str(
            world.ok(
                "coord", "POST", "/api/v1/cases", 201, json={"treatment_site": "USZ-APH", "therapy": "CAR-T"}
            )["coi"]
        )
        bag = str(
            world.ok(
                "nurse",
                "POST",
                f"/api/v1/cases/{coi}/units",
                201,
                json={"kind": "APH", "product": "Apheresis", "site": "USZ-APH", "expires_at": expiry},
            )["id"]
        )
        world.scan("nurse", "label", "USZ-APH", bag)
        ship = str(
            world.ok(
                "coord",
                "POST",
                "/api/v1/shipments",
                201,
                json={
                    "coi": coi,
                    "from_site": "USZ-APH",
                    "to_site": "CTA",
                    "container_id": f"SHIPPER-{n}",
                    "profile": "fresh",
                    "logger_id": logger,
                    "planned_departure": departure.isoformat(),
                    "planned_arrival": (departure + timedelta(hours=8)).isoformat(),
                    "units": [bag],
                },
            )["id"]
        )
        # Packed (offline) at the planned departure: a leg's readings are those from packing to receipt
        # (issue 20), and the scenarios send readings from the departure on.
        packed = world.ok(
            "nurse",
            "POST",
            "/api/v1/scans",
            201,
            json={
                "idempotency_key": str(uuid.uuid4()),
                "action": "pack",
                "site": "USZ-APH",
                "codes": [ship, bag],
                "device_time": departure.isoformat(),
            },
        )
        assert packed["outcome"] == "accepted", packed
        loggers.append(logger)
        ships[logger] = ship
        cases[ship] = coi
        system_.extra.setdefault("bags", {})[ship] = bag
    canary = f"LGR-C{tag}"
    world.ok(
        "admin",
        "POST",
        "/api/v1/loggers",
        201,
        json={"id": canary, "owner_site": "CTA", "issue_broker_password": False},
    )
    return Fleet(loggers, ships, cases, departure, canary)


# -- telemetry -----------------------------------------------------------------------------------------


def telemetry(logger: str, readings: list[tuple[datetime, float]]) -> bytes:
    return json.dumps(
        {
            "logger_id": logger,
            "readings": [{"ts": ts.isoformat().replace("+00:00", "Z"), "temp_c": t} for ts, t in readings],
        }
    ).encode()


def stream(
    fleet_: Fleet, per_logger: int, per_message: int, *, spike_at: float | None = 0.7, first: int = 0
) -> tuple[list[tuple[str, bytes]], Expected]:
    """Interleaved messages of every logger, one reading every 2 s from the planned departure (reading
    numbers `first`..), in range (4-6 °C) except three readings at SPIKE_C at `spike_at` of the way: one
    critical excursion per shipment."""
    messages: list[tuple[str, bytes]] = []
    expected: Expected = {}
    spike = first + int(per_logger * spike_at) if spike_at is not None else -10
    end = first + per_logger
    for start in range(first, end, per_message):
        for logger in fleet_.loggers:
            chunk = []
            for i in range(start, min(start + per_message, end)):
                ts = fleet_.departure + timedelta(seconds=2 * (i + 1))
                temp = SPIKE_C if spike <= i < spike + 3 else round(4 + (i % 21) / 10, 2)
                chunk.append((ts, temp))
                expected[(logger, ts)] = temp
            messages.append((topics.telemetry_topic(logger), telemetry(logger, chunk)))
    return messages, expected


@contextmanager
def publisher(endpoint: MqttEndpoint) -> Iterator[Publisher]:
    pub = Publisher(endpoint, f"fault-pub-{uuid.uuid4().hex[:8]}", max_outstanding=200)
    assert pub.start(10.0), "publisher could not connect"
    try:
        yield pub
    finally:
        pub.stop()


# -- scanning devices ---------------------------------------------------------------------------------


class Device:
    """A courier's phone or a pharmacy desk scanner: the scanner's own SQLite offline queue and sender.
    Every scan is queued on disk before it is sent; `drain` replays the queue in order."""

    def __init__(
        self, folder: Path, backend_url: str, username: str, clock_skew: timedelta = timedelta()
    ) -> None:
        self.queue = ScanQueue(folder / f"{username}-queue.sqlite3")
        self.client = BackendClient(backend_url, timeout=httpx.Timeout(5.0))
        self.client.login(username, PASSWORD)
        self.sender = Sender(self.queue, self.client, backoff_initial=0.2, backoff_max=1.0)
        self.skew = clock_skew
        self.keys: list[str] = []

    def scan(self, action: str, site: str, *codes: str, at: datetime | None = None) -> str:
        key = str(uuid.uuid4())
        body = {
            "idempotency_key": key,
            "action": action,
            "site": site,
            "codes": list(codes),
            "device_time": ((at or datetime.now(UTC)) + self.skew).isoformat(),
        }
        self.queue.enqueue(self.client.base_url, key, json.dumps(body).encode(), subject=" ".join(codes))
        self.keys.append(key)
        return key

    def drain(self, timeout: float) -> None:
        """Send until nothing is pending, backing off like the scanner does while the backend is away."""
        deadline = time.monotonic() + timeout
        while self.queue.count_pending(self.client.base_url):
            outcome = self.sender.drain()
            if outcome is Drain.LOGIN:
                self.client.login(self.client_username, PASSWORD)  # pragma: no cover - tokens outlive tests
            if outcome is not Drain.IDLE:
                assert time.monotonic() < deadline, "the device could not send its queue"
                time.sleep(self.sender.next_delay())

    @property
    def client_username(self) -> str:
        return self.queue.path.name.split("-queue")[0]

    def accepted(self) -> list[Any]:
        return self.queue.scans(ScanState.ACCEPTED)

    def refused(self) -> list[Any]:
        return self.queue.scans(ScanState.REFUSED)

    def close(self) -> None:
        self.client.close()
        self.queue.close()


# -- the count every scenario ends with ------------------------------------------------------------------


async def count_readings(url: str, loggers: list[str]) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM readings WHERE logger_id = ANY($1::text[])", loggers)
        )
    finally:
        await conn.close()


def wait_stored(url: str, loggers: list[str], at_least: int, seconds: float, what: str) -> None:
    wait(lambda: asyncio.run(count_readings(url, loggers)) >= at_least, seconds, what)


async def readings_audit(url: str, expected: Expected) -> dict[str, int]:
    """Every expected reading stored exactly once, with its temperature; nothing else for these loggers."""
    loggers = sorted({logger for logger, _ in expected})
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT logger_id, ts, temp_c FROM readings WHERE logger_id = ANY($1::text[])", loggers
        )
    finally:
        await conn.close()
    stored = {(r["logger_id"], r["ts"]): round(r["temp_c"], 2) for r in rows}
    missing = [key for key in expected if key not in stored]
    wrong = [key for key, temp in expected.items() if key in stored and stored[key] != temp]
    return {
        "sent": len(expected),
        "stored": len(rows),
        "duplicates": len(rows) - len(stored),
        "missing": len(missing),
        "unexpected": len(set(stored) - set(expected)),
        "wrong_value": len(wrong),
    }


async def scans_audit(
    url: str, keys: list[str], cases: list[str], events_before: dict[str, int]
) -> dict[str, int]:
    """Each scan's idempotency key answered once, and each case's chain grew by exactly the scans that
    named it: a retried or replayed scan never became a second event."""
    conn = await asyncpg.connect(url)
    try:
        answers = await conn.fetch(
            "SELECT idempotency_key, response FROM scan_requests WHERE idempotency_key = ANY($1::text[])",
            keys,
        )
        events = {
            r["coi"]: int(r["n"])
            for r in await conn.fetch(
                "SELECT coi, count(*) AS n FROM custody_events WHERE coi = ANY($1::text[]) GROUP BY coi",
                cases,
            )
        }
    finally:
        await conn.close()
    event_ids = [json.loads(r["response"]).get("event_id") for r in answers]
    grown = sum(events.get(c, 0) - events_before.get(c, 0) for c in cases)
    return {
        "scans_sent": len(keys),
        "scans_stored": len(answers),
        "scan_events": grown,
        "scan_duplicates": grown - len({e for e in event_ids if e is not None}),
    }


async def events_per_case(url: str, cases: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT coi, count(*) AS n FROM custody_events WHERE coi = ANY($1::text[]) GROUP BY coi", cases
        )
    finally:
        await conn.close()
    return {r["coi"]: int(r["n"]) for r in rows}


async def alerts_audit(url: str, shipments: list[str]) -> dict[str, int]:
    """The excursion each shipment had raised exactly one critical temperature alert; no alarm condition
    has two alerts (lost = shipments without one, duplicated = extra alerts for one condition)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT shipment_id, kind, severity, condition_key, status, "
            "withdrawn_at IS NOT NULL AS withdrawn FROM alerts WHERE shipment_id = ANY($1::text[])",
            shipments,
        )
    finally:
        await conn.close()
    critical = [r for r in rows if r["severity"] == "critical" and r["kind"] not in ("logger_silent",)]
    per_condition: dict[str, int] = {}
    # Alarms here; gap notices are counted on their own below.
    for r in rows:
        if r["severity"] != "info":
            per_condition[r["condition_key"]] = per_condition.get(r["condition_key"], 0) + 1
    with_alert = {r["shipment_id"] for r in critical}
    gaps = [r for r in rows if r["kind"] == "data_gap"]
    return {
        "alerts_expected": len(shipments),
        "alerts": len(critical),
        "alerts_lost": len(set(shipments) - with_alert),
        "alerts_duplicated": sum(n - 1 for n in per_condition.values()),
        "alert_kinds": len({r["kind"] for r in rows}),
        # Every reading arrives in the end, so the complete series has no gap: any gap notice raised on
        # the way (and withdrawn once a later piece filled the hole) is a notice that flapped.
        "gap_notices": len(gaps),
        "gap_notices_withdrawn": sum(1 for r in gaps if r["withdrawn"]),
    }


async def chains_audit(url: str) -> dict[str, int]:
    report = await verify_chains(url)
    return {"chains": report.cases, "chains_verified": report.verified}


def healthy(system_: System, canary_logger: str, seconds: float = 60) -> dict[str, Any]:
    """Back to healthy with no manual step: /healthz says ok for database and broker, and a reading
    published now goes all the way into the database."""
    wait(lambda: system_.health().get("status") == "ok", seconds, "backend healthy again")
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    with publisher(system_.broker) as pub:
        pub.publish(topics.telemetry_topic(canary_logger), telemetry(canary_logger, [(ts, 5.5)]))
        assert pub.flush(20)

    async def arrived() -> bool:
        conn = await asyncpg.connect(system_.postgres_url)
        try:
            return bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM readings WHERE logger_id = $1 AND ts = $2)",
                    canary_logger,
                    ts,
                )
            )
        finally:
            await conn.close()

    wait(lambda: asyncio.run(arrived()), seconds, "a fresh reading to arrive after recovery")

    async def listening() -> bool:
        # The backend's live hub holds one LISTEN connection; after a database restart it must have
        # reconnected, or live pages would only catch up on their 15 s keep-alive poll.
        conn = await asyncpg.connect(system_.postgres_url)
        try:
            return bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%')"
                )
            )
        finally:
            await conn.close()

    wait(lambda: asyncio.run(listening()), seconds, "the live hub listening again")
    return {"healthy": 1}


def feed(pub: Publisher, messages: list[tuple[str, bytes]], resume: threading.Event) -> threading.Thread:
    """Publish the first half, wait for `resume` (set once the fault is under way), then the rest."""

    def run() -> None:
        for n, (topic, payload) in enumerate(messages):
            if n == len(messages) // 2:
                resume.wait(120)
            pub.publish(topic, payload)
            if n % 20 == 0:
                time.sleep(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def check_counts(counts: dict[str, Any], sent: int) -> None:
    """The verdict on a telemetry scenario's counts: all stored once, alerts once, chains verified."""
    assert counts["stored"] == counts["sent"] == sent
    zeros = (
        "duplicates",
        "missing",
        "unexpected",
        "wrong_value",
        "alerts_lost",
        "alerts_duplicated",
        "gap_notices",
    )
    for zero in zeros:
        assert counts[zero] == 0, (zero, counts)
    assert counts["chains_verified"] == counts["chains"]
