"""`celltrail serve` and `celltrail bridge` as subprocesses beside a real Mosquitto and PostgreSQL, a
publisher, and an SSE reader: the pieces of the end-to-end alert test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from backend.embedded.ports import free_port
from firmware_bridge import topics
from firmware_bridge.mqtt_clients import Subscriber
from firmware_bridge.settings import load_settings
from tests.conftest import ADMIN_PASSWORD

REPO = Path(__file__).resolve().parents[3]
BRIDGE_PASSWORD = "bridge-password-for-alerting"


def wired() -> bool:
    """Whether ingest calls the excursion service yet (the lead wires it; until then the end-to-end
    test has nothing to observe)."""
    sources = [REPO / "backend" / "services" / "ingest.py", REPO / "backend" / "api" / "ingest.py"]
    return any("evaluate_after_ingest" in p.read_text() for p in sources if p.exists())


@dataclass
class Stack:
    directory: Path
    database_url: str
    mqtt_url: str
    port: int = field(default_factory=free_port)
    client_id: str = field(default_factory=lambda: f"alerting-bridge-{uuid.uuid4().hex[:8]}")
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("ab")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CELLTRAIL_")}
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", *args],
            cwd=REPO,
            env={**clean, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def start_backend(self, **extra: str) -> None:
        process = self._spawn(
            "backend",
            ["serve"],
            {
                "CELLTRAIL_DATABASE_URL": self.database_url,
                "CELLTRAIL_MQTT_URL": self.mqtt_url,
                "CELLTRAIL_PORT": str(self.port),
                "CELLTRAIL_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "CELLTRAIL_LOG_FORMAT": "text",
                **extra,
            },
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert process.poll() is None, self.log("backend")
            assert time.monotonic() < deadline, "backend not healthy:\n" + self.log("backend")
            time.sleep(0.1)

    def start_bridge(self) -> None:
        online = threading.Event()

        def on_status(topic: str, payload: bytes, retained: bool) -> None:
            status = json.loads(payload) if payload else {}
            if status.get("bridge_id") == self.client_id and status.get("online"):
                online.set()

        endpoint = load_settings(env={}, mqtt_url=self.mqtt_url).mqtt_endpoint()
        watcher = Subscriber(
            endpoint, f"alerting-watch-{uuid.uuid4().hex[:8]}", [topics.BRIDGE_STATUS], on_status
        )
        assert watcher.start(10.0), "status watcher could not connect"
        try:
            self._spawn(
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
                },
            )
            assert online.wait(30), "bridge did not come online:\n" + self.log("bridge")
        finally:
            watcher.stop()

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def sse_events(client: httpx.AsyncClient, headers: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
    """Data of each event on /api/v1/stream; the first item (an empty dict) says the stream is open."""
    async with client.stream("GET", "/api/v1/stream", headers=headers, timeout=None) as response:
        assert response.status_code == 200
        yield {}
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                yield json.loads(line[6:])


class Watcher:
    """Collects one SSE stream in the background; `wait_for` returns the first event matching."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.events: list[dict[str, Any]] = []
        self.opened = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(client, headers))

    async def _run(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        async for item in sse_events(client, headers):
            if not item:
                self.opened.set()
                continue
            self.events.append(item)
            self._changed.set()

    async def wait_for(self, what: str, timeout: float, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for item in self.events:
                if all(item.get(k) == v for k, v in fields.items()):
                    return item
            left = deadline - time.monotonic()
            assert left > 0, f"no {what} on the stream within {timeout:g} s; saw {self.events}"
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._task
