"""The whole Celltrail stack for end-to-end benchmarks, every piece a real process on this machine:
a durable embedded PostgreSQL, Mosquitto, `celltrail serve` and `celltrail bridge`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from backend.db.migrate import migrate_url
from backend.embedded.ports import free_port, port_open
from backend.embedded.postgres import EmbeddedPostgres
from firmware_bridge import topics
from firmware_bridge.settings import MqttEndpoint

REPO = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "bench-admin-password"


def wait(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {seconds:g} s")
        time.sleep(0.1)


async def execute(url: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


@contextmanager
def postgres(folder: Path) -> Iterator[str]:
    """A migrated database `bench`. Durable settings (fsync, synchronous_commit): a 200 from the backend
    means the rows are on disk, as in production."""
    cluster = EmbeddedPostgres(folder / "pgdata")
    cluster.start()
    try:
        asyncio.run(execute(cluster.url, 'CREATE DATABASE "bench"'))
        url = cluster.database_url("bench")
        asyncio.run(migrate_url(url))
        yield url
    finally:
        cluster.stop("immediate")


@contextmanager
def mosquitto(folder: Path) -> Iterator[MqttEndpoint]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
        # A whole run may queue for the bridge; lift the per-client limits.
        "max_queued_messages 0\nmax_inflight_messages 0\n" + ("user root\n" if os.geteuid() == 0 else "")
    )
    process = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait(
            lambda: port_open("127.0.0.1", port, 0.2) or process.poll() is not None, 10, "mosquitto listening"
        )
        yield MqttEndpoint("127.0.0.1", port, False, None, None)
    finally:
        process.terminate()
        process.wait(10)


class Celltrail:
    """`celltrail serve` and `celltrail bridge` as the user runs them."""

    def __init__(
        self, folder: Path, database_url: str, endpoint: MqttEndpoint, *, bridge_password: str, client_id: str
    ) -> None:
        from backend.services import record_keys

        self.folder = folder
        self.record_key_file = folder / "record.key"
        if not self.record_key_file.exists():
            record_keys.add_key(self.record_key_file)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CELLTRAIL_")}
        self.env = {
            **clean,
            "CELLTRAIL_DATABASE_URL": database_url,
            "CELLTRAIL_MQTT_URL": f"mqtt://{endpoint.host}:{endpoint.port}",
            "CELLTRAIL_PORT": str(self.port),
            "CELLTRAIL_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "CELLTRAIL_LOG_LEVEL": "WARNING",
            "CELLTRAIL_BACKEND_URL": self.url,
            "CELLTRAIL_BRIDGE_USERNAME": "bridge",
            "CELLTRAIL_BRIDGE_PASSWORD": bridge_password,
            "CELLTRAIL_BRIDGE_CLIENT_ID": client_id,
            "CELLTRAIL_BRIDGE_BUFFER_DIR": str(folder / "bridge-buffer"),
            # The record keyring the server links custody events with (a fresh one per run).
            "CELLTRAIL_RECORD_KEY_FILE": str(self.record_key_file),
            "CELLTRAIL_CHECKPOINT_DIR": str(folder / "checkpoints"),
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{args[0]}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", *args],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def start_backend(self, *options: str) -> None:
        process = self.spawn("serve", *options)
        wait(lambda: self.healthy() or process.poll() is not None, 60, "backend healthy")
        if process.poll() is not None:
            raise RuntimeError((self.folder / "serve.log").read_text()[-3000:])

    def post(self, path: str, body: object, token: str | None = None) -> dict[str, object]:
        headers = {
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        }
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, object] = json.loads(response.read())
        return answer

    def start_bridge(self, endpoint: MqttEndpoint) -> None:
        """Start the bridge and wait until its retained status says it is online (subscribed)."""
        from firmware_bridge.mqtt_clients import Subscriber

        online = threading.Event()
        client_id = self.env["CELLTRAIL_BRIDGE_CLIENT_ID"]

        def on_status(topic: str, payload: bytes, retained: bool) -> None:
            status = json.loads(payload) if payload else {}
            if status.get("bridge_id") == client_id and status.get("online"):
                online.set()

        watcher = Subscriber(endpoint, f"bench-watch-{os.getpid()}", [topics.BRIDGE_STATUS], on_status)
        watcher.start(10.0)
        try:
            self.spawn("bridge", "--log-level", "WARNING")
            if not online.wait(30):
                raise RuntimeError("bridge did not come online: " + (self.folder / "bridge.log").read_text())
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
