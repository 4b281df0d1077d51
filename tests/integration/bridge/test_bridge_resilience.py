"""Nothing lost: the backend going away, the disk buffer filling up, the bridge killed mid-stream."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bridge_it_support import (
    PASSWORD,
    USERNAME,
    FakeBackend,
    json_telemetry,
    readings_checksum,
    wait_for,
)

from firmware_bridge import topics
from firmware_bridge.mqtt_clients import Subscriber
from firmware_bridge.settings import load_settings

REPO = Path(__file__).resolve().parents[3]


def _stream(prefix: str, loggers: int, messages: int, per_message: int) -> list[tuple[str, bytes, dict]]:
    """Messages of ``per_message`` readings for several loggers, and the readings they carry."""
    tag = uuid.uuid4().hex[:4].upper()
    base = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    out = []
    for m in range(messages):
        logger = f"LGR-{prefix}{tag}{m % loggers:02d}"
        readings = [
            (base + timedelta(seconds=10 * (m * per_message + i)), round(2 + ((m * 7 + i) % 60) / 10, 2))
            for i in range(per_message)
        ]
        out.append((logger, json_telemetry(logger, readings), {(logger, ts): t for ts, t in readings}))
    return out


def _expected(stream: list[tuple[str, bytes, dict]]) -> dict:
    expected: dict = {}
    for _, _, readings in stream:
        expected.update(readings)
    return expected


def test_backend_down_then_up_delivers_everything_exactly_once(start_bridge, publisher, backend):
    bridge = start_bridge(batch_size=100)
    stream = _stream("Q", 5, 200, 5)
    expected = _expected(stream)
    backend.go_down()
    for logger, payload, _ in stream:
        publisher.publish(topics.telemetry_topic(logger), payload)
    # Everything is acknowledged because it is fsync'd on disk, while the backend is still away.
    wait_for(
        lambda: bridge.metrics.messages_in.value(kind="telemetry") >= len(stream), what="all messages in"
    )
    wait_for(lambda: bridge.forwarder.unacked == 0, what="all messages acknowledged from disk")
    assert bridge.buffer.depth > 0
    assert backend.reading_count() == 0

    backend.go_up()
    wait_for(lambda: backend.reading_count() >= len(expected), 30.0, "replay after the backend returned")
    wait_for(lambda: bridge.buffer.depth == 0, what="buffer drained")
    assert backend.checksum() == readings_checksum(expected)
    # Exactly once: no reading reached the backend twice.
    assert len(backend.received) == len(expected)
    assert max(Counter(backend.received).values()) == 1


def test_a_full_disk_buffer_stops_acknowledging_and_nothing_is_lost(start_bridge, publisher, backend):
    # 16 KiB holds a handful of batches: the rest must wait with the broker, unacknowledged.
    bridge = start_bridge(buffer_max_mb=1 / 64, batch_size=20, inflight=50)
    stream = _stream("F", 4, 300, 5)
    expected = _expected(stream)
    backend.mode = "503"
    for logger, payload, _ in stream:
        publisher.publish(topics.telemetry_topic(logger), payload)
    wait_for(lambda: bridge.buffer.fill_ratio > 0.8, what="buffer nearly full")
    wait_for(lambda: bridge.forwarder.unacked > 0, what="messages held unacknowledged")
    # Backpressure: the broker stops at the receive maximum; the bridge does not swallow everything.
    wait_for(lambda: bridge.metrics.unacked.value() > 0, what="unacked gauge")
    assert bridge.metrics.messages_in.value(kind="telemetry") < len(stream)
    assert bridge.forwarder.unacked <= 50

    backend.mode = "up"
    wait_for(lambda: backend.reading_count() >= len(expected), 60.0, "everything after the backend recovered")
    assert backend.checksum() == readings_checksum(expected)


def _bridge_process(
    broker_url: str, backend: FakeBackend, client_id: str, buffer_dir: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CELLTRAIL_MQTT_URL": broker_url,
        "CELLTRAIL_BACKEND_URL": backend.url,
        "CELLTRAIL_BRIDGE_USERNAME": USERNAME,
        "CELLTRAIL_BRIDGE_PASSWORD": PASSWORD,
        "CELLTRAIL_BRIDGE_CLIENT_ID": client_id,
        "CELLTRAIL_BRIDGE_BUFFER_DIR": str(buffer_dir),
        "CELLTRAIL_BRIDGE_BATCH_MS": "20",
        "CELLTRAIL_BRIDGE_BATCH_SIZE": "200",
        "CELLTRAIL_BRIDGE_RETRY_MAX_S": "0.5",
        "CELLTRAIL_BRIDGE_SESSION_EXPIRY_S": "120",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "firmware_bridge", "bridge", "--log-level", "WARNING"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _buffered_batches(buffer_dir: Path) -> int:
    path = buffer_dir / "queue.sqlite3"
    if not path.exists():
        return 0
    # A reader beside the bridge's writer: WAL mode allows it.
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM batches").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


@pytest.mark.slow
@pytest.mark.parametrize("backend_during_kill", ["up", "failing"])
def test_bridge_killed_mid_stream_loses_nothing(
    broker_url, backend, publisher, tmp_path, backend_during_kill
):
    client_id = f"it-kill-{uuid.uuid4().hex[:6]}"
    buffer_dir = tmp_path / "buffer"
    endpoint = load_settings(env={}, mqtt_url=broker_url).mqtt_endpoint()
    announcements: list[bool] = []

    def on_status(topic: str, payload: bytes, retained: bool) -> None:
        if payload and json.loads(payload).get("bridge_id") == client_id:
            announcements.append(json.loads(payload)["online"])

    watcher = Subscriber(endpoint, f"it-watch-{uuid.uuid4().hex[:6]}", [topics.BRIDGE_STATUS], on_status)
    assert watcher.start(10.0)
    stream = _stream("K", 8, 600, 10)
    expected = _expected(stream)
    process = _bridge_process(broker_url, backend, client_id, buffer_dir)
    restarted: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    try:
        wait_for(lambda: announcements[-1:] == [True], what="bridge online")

        def publish_all() -> None:
            for logger, payload, _ in stream:
                if stop.is_set():
                    return
                publisher.publish(topics.telemetry_topic(logger), payload)
                stop.wait(0.004)

        feeder = threading.Thread(target=publish_all, daemon=True)
        feeder.start()
        wait_for(lambda: backend.reading_count() >= len(expected) // 4, what="a quarter stored")
        if backend_during_kill == "failing":
            backend.mode = "503"  # the next batches go to the disk buffer, then the kill
            wait_for(lambda: _buffered_batches(buffer_dir) > 0, what="batches on disk")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        # The broker's last will announces the bridge offline.
        wait_for(lambda: announcements[-1:] == [False], what="last will")
        backend.mode = "up"
        restarted = _bridge_process(broker_url, backend, client_id, buffer_dir)
        feeder.join(30)
        assert publisher.flush(20.0)
        wait_for(lambda: backend.reading_count() >= len(expected), 60.0, "every reading after the restart")
        assert backend.checksum() == readings_checksum(expected)
        assert set(backend.readings) == set(expected)
    finally:
        stop.set()
        for proc in (process, restarted):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        watcher.stop()
