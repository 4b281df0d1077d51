"""Helpers for the bridge's integration tests: a private Mosquitto, an in-memory ingest backend that
implements the ingest contract, payload builders and a deadline-based wait."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec

from firmware_bridge.ingest_contract import (
    CONTENT_TYPE,
    INGEST_PATH,
    LOGIN_PATH,
    DeadLetter,
    IngestResult,
    LoggerStatus,
    decode_batch,
    encode_result,
)
from firmware_bridge.settings import BridgeSettings, load_settings

MOSQUITTO = "/usr/sbin/mosquitto"
USERNAME = "bridge"
PASSWORD = "bridge-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll until ``condition`` holds; fail naming ``what`` at the deadline (not a timing assert)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@dataclass
class PrivateBroker:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@contextmanager
def private_mosquitto(directory: Path, listener_options: str = "") -> Iterator[PrivateBroker]:
    """A Mosquitto of our own on a free port, with persistence and TCP_NODELAY, stopped on exit.
    ``listener_options`` (TLS files, password file...) apply to its one listener; without a
    password_file the listener is anonymous."""
    binary = shutil.which("mosquitto") or MOSQUITTO
    port = free_port()
    conf = directory / "mosquitto.conf"
    anonymous = "false" if "password_file" in listener_options else "true"
    conf.write_text(
        # Started as root (CI), Mosquitto would switch to the "mosquitto" user, who cannot read the
        # test's private temp dir; as any other user this line is ignored.
        "user root\n"
        "per_listener_settings true\n"
        f"listener {port} 127.0.0.1\n"
        f"allow_anonymous {anonymous}\n"
        f"{listener_options}\n"
        "persistence true\n"
        f"persistence_location {directory}/\n"
        "set_tcp_nodelay true\n"
    )
    with open(directory / "mosquitto.log", "wb") as log_file:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=log_file, stderr=log_file)
        try:
            wait_for(lambda: _accepts(port) or process.poll() is not None, 10.0, "mosquitto to listen")
            if process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(directory / 'mosquitto.log').read_text()}")
            yield PrivateBroker("127.0.0.1", port, process)
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# -- an in-memory stand-in for the backend's ingest endpoint ---------------------------------------


ReadingKey = tuple[str, datetime]


@dataclass
class FakeBackend:
    """Implements LOGIN_PATH and INGEST_PATH of the ingest contract in memory.

    ``mode``: "up", "503" (answers 503), "422" (refuses every batch as invalid). ``expire_token()``
    makes the next ingest call answer 401. Stopping the listener (``go_down``) refuses connections.
    """

    port: int
    readings: dict[ReadingKey, float] = field(default_factory=dict)
    # Every reading received, duplicates included: exactly-once checks look at this.
    received: list[ReadingKey] = field(default_factory=list)
    statuses: list[LoggerStatus] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    batch_ids: list[str] = field(default_factory=list)
    logins: int = 0
    mode: str = "up"
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def go_up(self) -> None:
        handler = _handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def go_down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def expire_token(self) -> None:
        with self.lock:
            self.tokens.clear()

    def reading_count(self) -> int:
        with self.lock:
            return len(self.readings)

    def checksum(self) -> str:
        with self.lock:
            return readings_checksum(self.readings)

    def ingest(self, body: bytes) -> IngestResult:
        batch = decode_batch(body)
        with self.lock:
            self.batch_ids.append(batch.batch_id)
            stored = duplicates = 0
            for r in batch.readings:
                key = (r.logger_id, r.ts)
                self.received.append(key)
                if key in self.readings:
                    duplicates += 1
                else:
                    self.readings[key] = r.temp_c
                    stored += 1
            self.statuses.extend(batch.statuses)
            self.dead_letters.extend(batch.dead_letters)
        return IngestResult(stored=stored, duplicates=duplicates, dead_lettered=len(batch.dead_letters))


def readings_checksum(readings: dict[ReadingKey, float]) -> str:
    digest = hashlib.sha256()
    for (logger, ts), temp in sorted(readings.items()):
        digest.update(f"{logger}|{ts.isoformat()}|{temp:.2f}\n".encode())
    return digest.hexdigest()


def _handler(backend: FakeBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == LOGIN_PATH:
                credentials = json.loads(body)
                if credentials != {"username": USERNAME, "password": PASSWORD}:
                    self._reply(401, b'{"detail":"bad credentials"}', "application/json")
                    return
                token = uuid.uuid4().hex
                with backend.lock:
                    backend.logins += 1
                    backend.tokens.add(token)
                self._reply(200, json.dumps({"token": token}).encode(), "application/json")
                return
            if self.path != INGEST_PATH:
                self._reply(404, b"{}", "application/json")
                return
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            with backend.lock:
                authorised = token in backend.tokens
            if not authorised:
                self._reply(401, b'{"detail":"token expired"}', "application/json")
                return
            if backend.mode == "503":
                self._reply(503, b'{"detail":"database restarting"}', "application/json")
                return
            if backend.mode == "422" or self.headers.get("Content-Type") != CONTENT_TYPE:
                self._reply(422, b'{"detail":"batch refused"}', "application/json")
                return
            try:
                result = backend.ingest(body)
            except msgspec.DecodeError as exc:
                self._reply(400, str(exc).encode(), "text/plain")
                return
            self._reply(200, encode_result(result), CONTENT_TYPE)

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


# -- the bridge under test ------------------------------------------------------------------------


def bridge_settings(
    broker_url: str, backend_url: str, buffer_dir: Path, **overrides: object
) -> BridgeSettings:
    values: dict[str, object] = {
        "mqtt_url": broker_url,
        "backend_url": backend_url,
        "username": USERNAME,
        "password": PASSWORD,
        "client_id": f"it-bridge-{uuid.uuid4().hex[:8]}",
        "buffer_dir": str(buffer_dir),
        "batch_ms": 20,
        "retry_max_s": 0.5,
        "http_timeout_s": 5.0,
        # Long enough for the restart tests, short enough that the broker forgets test sessions.
        "session_expiry_s": 120,
    }
    values.update(overrides)
    return load_settings(env={}, **values)


def json_telemetry(logger_id: str, readings: list[tuple[datetime, float]], **extra: object) -> bytes:
    message: dict[str, object] = {
        "logger_id": logger_id,
        "readings": [{"ts": ts.isoformat().replace("+00:00", "Z"), "temp_c": temp} for ts, temp in readings],
    }
    message.update(extra)
    return json.dumps(message).encode()
