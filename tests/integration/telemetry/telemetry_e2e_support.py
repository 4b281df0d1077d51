"""The real thing for end-to-end tests: `celltrail serve` and `celltrail bridge` as subprocesses beside a
real Mosquitto and PostgreSQL, a publisher, message builders and exactly-once checks on the database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from telemetry_support import free_port

from firmware_bridge import frame, topics
from firmware_bridge.mqtt_clients import Subscriber
from firmware_bridge.settings import load_settings
from tests.conftest import ADMIN_PASSWORD

REPO = Path(__file__).resolve().parents[3]
BRIDGE_PASSWORD = "bridge-password-for-e2e"

# (logger, unix seconds with microseconds, °C) -> what the readings table must hold in the end.
Expected = dict[tuple[str, datetime], float]


def json_message(logger_id: str, readings: Iterable[tuple[datetime, float]]) -> bytes:
    return json.dumps(
        {
            "logger_id": logger_id,
            "readings": [{"ts": ts.isoformat().replace("+00:00", "Z"), "temp_c": t} for ts, t in readings],
            "battery_pct": 77,
        }
    ).encode()


def binary_message(logger_id: str, first: datetime, interval_s: int, temps_centi: list[int]) -> bytes:
    return frame.encode(
        frame.Frame(
            logger_id=logger_id,
            seq=1,
            base_ts=int(first.timestamp()),
            interval_s=interval_s if len(temps_centi) > 1 else 0,
            temps_centi=tuple(temps_centi),
            battery_pct=55,
        )
    )


def base_time() -> datetime:
    """Whole seconds, a day back: inside every plausibility window of the bridge."""
    return (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


async def verify_exactly_once(database_url: str, expected: Expected, label: str) -> None:
    """Every expected reading stored once with its temperature: count and checksum per logger, then
    the exact set. Prints the figures so a run shows what it proved."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT logger_id, count(*) AS n, sum(round(temp_c::numeric * 1000))::bigint AS milli,
                      sum(extract(epoch FROM ts) * 1000000)::numeric AS micros
               FROM readings WHERE logger_id = ANY($1::text[]) GROUP BY logger_id ORDER BY logger_id""",
            sorted({logger for logger, _ in expected}),
        )
        stored = await conn.fetch(
            "SELECT logger_id, ts, temp_c FROM readings WHERE logger_id = ANY($1::text[])",
            sorted({logger for logger, _ in expected}),
        )
    finally:
        await conn.close()
    want: dict[str, list[int]] = {}
    for (logger, ts), temp in expected.items():
        entry = want.setdefault(logger, [0, 0, 0])
        entry[0] += 1
        entry[1] += round(temp * 1000)
        entry[2] += round(ts.timestamp() * 1_000_000)
    got = {r["logger_id"]: [r["n"], r["milli"], int(r["micros"])] for r in rows}
    for logger in sorted(want):
        print(
            f"[{label}] {logger}: sent {want[logger][0]} readings, stored {got.get(logger, [0])[0]}, "
            f"sum(temp*1000) sent {want[logger][1]} stored {got.get(logger, [0, 0])[1]}"
        )
    assert got == want
    assert {(r["logger_id"], r["ts"]): round(r["temp_c"], 2) for r in stored} == expected


@dataclass
class Stack:
    """Backend and bridge processes of one test, with their logs under `directory`."""

    directory: Path
    database_url: str
    mqtt_url: str
    port: int = field(default_factory=free_port)
    client_id: str = field(default_factory=lambda: f"e2e-bridge-{uuid.uuid4().hex[:8]}")
    backend: subprocess.Popen[bytes] | None = None
    bridge: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("ab")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CELLTRAIL_")}
        return subprocess.Popen(
            [sys.executable, "-m", "backend.cli", *args],
            cwd=REPO,
            env={**clean, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def start_backend(self) -> None:
        self.backend = self._spawn(
            "backend",
            ["serve"],
            {
                "CELLTRAIL_DATABASE_URL": self.database_url,
                "CELLTRAIL_MQTT_URL": self.mqtt_url,
                "CELLTRAIL_PORT": str(self.port),
                "CELLTRAIL_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "CELLTRAIL_LOG_FORMAT": "text",
            },
        )
        deadline = time.monotonic() + 60
        while not self._healthy():
            assert self.backend.poll() is None, self.log("backend")
            assert time.monotonic() < deadline, "backend not healthy:\n" + self.log("backend")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop_backend(self) -> None:
        _stop(self.backend)

    def api(self, method: str, path: str, body: object, token: str | None = None) -> dict[str, object]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(body).encode(), headers=headers, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, object] = json.loads(response.read())
        return answer

    def prepare(self, loggers: Iterable[str]) -> None:
        """The bridge's account (role bridge) and the registered loggers, through the API."""
        token = str(
            self.api("POST", "/api/v1/auth/login", {"username": "admin", "password": ADMIN_PASSWORD})["token"]
        )
        self.api(
            "POST",
            "/api/v1/users",
            {
                "username": "bridge",
                "full_name": "Bridge",
                "password": BRIDGE_PASSWORD,
                "roles": ["bridge"],
                "sites": ["HQ"],
            },
            token,
        )
        for logger in loggers:
            self.api(
                "POST",
                "/api/v1/loggers",
                {"id": logger, "owner_site": "HQ", "issue_broker_password": False},
                token,
            )

    def start_bridge(self) -> None:
        self.bridge = self._spawn(
            "bridge",
            ["bridge", "--log-level", "WARNING"],
            {
                "CELLTRAIL_MQTT_URL": self.mqtt_url,
                "CELLTRAIL_BACKEND_URL": self.url,
                "CELLTRAIL_BRIDGE_USERNAME": "bridge",
                "CELLTRAIL_BRIDGE_PASSWORD": BRIDGE_PASSWORD,
                "CELLTRAIL_BRIDGE_CLIENT_ID": self.client_id,
                "CELLTRAIL_BRIDGE_BUFFER_DIR": str(self.directory / "bridge-buffer"),
                "CELLTRAIL_BRIDGE_BATCH_MS": "20",
                "CELLTRAIL_BRIDGE_RETRY_MAX_S": "0.5",
                "CELLTRAIL_BRIDGE_HTTP_TIMEOUT_S": "5",
                "CELLTRAIL_BRIDGE_SESSION_EXPIRY_S": "300",
            },
        )
        self.wait_bridge_online()

    def wait_bridge_online(self, timeout: float = 30.0) -> None:
        """Until the bridge announced itself online: its subscriptions stand, so nothing published from
        now on can miss its session."""
        online = threading.Event()

        def on_status(topic: str, payload: bytes, retained: bool) -> None:
            status = json.loads(payload) if payload else {}
            if status.get("bridge_id") == self.client_id and status.get("online"):
                online.set()

        endpoint = load_settings(env={}, mqtt_url=self.mqtt_url).mqtt_endpoint()
        watcher = Subscriber(endpoint, f"e2e-watch-{uuid.uuid4().hex[:8]}", [topics.BRIDGE_STATUS], on_status)
        assert watcher.start(10.0), "status watcher could not connect"
        try:
            assert online.wait(timeout), "bridge did not come online:\n" + self.log("bridge")
        finally:
            watcher.stop()

    def kill_bridge(self) -> None:
        assert self.bridge is not None
        self.bridge.send_signal(signal.SIGKILL)
        self.bridge.wait(10)

    def stop(self) -> None:
        _stop(self.bridge)
        _stop(self.backend)


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def reading_count(database_url: str, loggers: Iterable[str]) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM readings WHERE logger_id = ANY($1::text[])", list(loggers)
            )
        )
    finally:
        await conn.close()


def telemetry_topic(logger_id: str, binary: bool = False) -> str:
    return topics.telemetry_bin_topic(logger_id) if binary else topics.telemetry_topic(logger_id)
