"""Telemetry ingest benchmark: the broker's ceiling, and what the bridge makes of it.

* Broker alone: a bare-socket publisher and subscriber (bench/mqtt_raw.py) in two separate processes,
  QoS 1 both ways, TCP_NODELAY, a private Mosquitto with ``set_tcp_nodelay true``; messages shaped
  exactly like real telemetry, with one reading and with ten.
* Bridge: the same publisher process -> Mosquitto -> the bridge in this process (MQTT 5, persistent
  session, manual acks, pure decode, micro-batching, msgpack encoding) -> an in-process sink in place of
  the backend, which counts the readings it is handed. The gap to the broker-alone figure is the
  bridge's own cost.

``run(smoke)`` returns one dict per figure; ``python -m bench.ingest_broker [--smoke]`` prints them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from firmware_bridge import topics
from firmware_bridge.ingest_client import Outcome, SendResult
from firmware_bridge.ingest_contract import IngestBatch
from firmware_bridge.settings import MqttEndpoint, load_settings

LOGGERS = 1000
CONDITIONS = "Mosquitto {version} on 127.0.0.1, QoS 1, TCP_NODELAY, {count} messages, {cores} cores"


# -- the broker ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _mosquitto() -> Iterator[MqttEndpoint]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory(prefix="bench-mosquitto-") as folder:
        port = _free_port()
        conf = Path(folder) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
            # The benchmark queues whole runs for one subscriber; lift the per-client queue limits.
            "max_queued_messages 0\nmax_inflight_messages 0\n"
        )
        process = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("mosquitto did not start") from None
                    time.sleep(0.02)
            yield MqttEndpoint("127.0.0.1", port, False, None, None)
        finally:
            process.terminate()
            process.wait(10)


def _mosquitto_version() -> str:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    out = subprocess.run([binary, "-h"], capture_output=True, text=True, check=False).stdout
    return out.split("version", 1)[1].split()[0] if "version" in out else "?"


# -- payloads like the real ones -------------------------------------------------------------------


class _Reading(msgspec.Struct):
    ts: datetime
    temp_c: float


class _Telemetry(msgspec.Struct):
    logger_id: str
    readings: list[_Reading]
    battery_pct: int
    lid_open: bool


def _payloads(count: int, per_message: int) -> list[tuple[str, bytes]]:
    """Distinct readings (unique logger and timestamp) so no layer can shortcut duplicates."""
    encoder = msgspec.json.Encoder()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    out = []
    for n in range(count):
        logger = f"LGR-{n % LOGGERS + 1:04d}"
        first = (n // LOGGERS) * per_message
        readings = [
            _Reading(ts=start + timedelta(seconds=10 * (first + i)), temp_c=round(4.0 + (n + i) % 40 / 10, 2))
            for i in range(per_message)
        ]
        message = _Telemetry(logger_id=logger, readings=readings, battery_pct=80, lid_open=False)
        out.append((topics.telemetry_topic(logger), encoder.encode(message)))
    return out


# -- processes -------------------------------------------------------------------------------------


def _publish_process(endpoint: MqttEndpoint, count: int, per_message: int, go: Any, done: Any) -> None:
    from bench.mqtt_raw import RawPublisher

    messages = [(topic.encode(), payload) for topic, payload in _payloads(count, per_message)]
    publisher = RawPublisher(endpoint.host, endpoint.port, f"bench-pub-{per_message}-{time.monotonic_ns()}")
    go.wait(30)
    for start in range(0, len(messages), 100):
        publisher.publish_many(messages[start : start + 100])
    publisher.flush(120.0)
    publisher.close()
    done.set()


def _subscribe_process(endpoint: MqttEndpoint, count: int, ready: Any, results: Any) -> None:
    from bench.mqtt_raw import RawSubscriber

    seen = 0
    first = last = 0.0
    finished = threading.Event()

    def on_messages(received: int, size: int) -> None:
        nonlocal seen, first, last
        now = time.perf_counter()
        if not seen:
            first = now
        seen += received
        last = now
        if seen >= count:
            finished.set()

    subscriber = RawSubscriber(
        endpoint.host, endpoint.port, f"bench-sub-{time.monotonic_ns()}", topics.TELEMETRY_FILTER, on_messages
    )
    ready.set()
    finished.wait(300)
    subscriber.close()
    results.put((seen, last - first))


def _broker_alone(endpoint: MqttEndpoint, count: int, per_message: int) -> float:
    ctx = mp.get_context("spawn")
    ready, go, done, results = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    subscriber = ctx.Process(target=_subscribe_process, args=(endpoint, count, ready, results))
    publisher = ctx.Process(target=_publish_process, args=(endpoint, count, per_message, go, done))
    subscriber.start()
    ready.wait(30)
    publisher.start()
    go.set()
    seen, seconds = results.get(timeout=300)
    publisher.join(60)
    subscriber.join(60)
    if seen < count:
        raise RuntimeError(f"subscriber saw {seen} of {count} messages")
    return float(count / seconds)


class _Sink:
    """Stands where the backend's HTTP endpoint would: counts readings as batches arrive."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.readings = 0
        self.first = 0.0
        self.last = 0.0
        self.done = threading.Event()
        self._decoder = msgspec.msgpack.Decoder(IngestBatch)

    def send(self, body: bytes) -> SendResult:
        batch = self._decoder.decode(body)
        now = time.perf_counter()
        if not self.readings:
            self.first = now
        self.readings += len(batch.readings)
        self.last = now
        if self.readings >= self.expected:
            self.done.set()
        return SendResult(Outcome.STORED, "sink")

    def close(self) -> None:
        return


def _through_bridge(endpoint: MqttEndpoint, count: int, per_message: int) -> tuple[float, float]:
    from firmware_bridge.bridge import Bridge

    sink = _Sink(count * per_message)
    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as folder:
        settings = load_settings(
            env={},
            mqtt_url=f"mqtt://{endpoint.host}:{endpoint.port}",
            client_id=f"bench-bridge-{time.monotonic_ns()}",
            buffer_dir=folder,
        )
        bridge = Bridge(settings, sender=sink)
        bridge.start()
        try:
            if not bridge.connection.wait_subscribed(10.0):
                raise RuntimeError("bridge did not subscribe")
            ctx = mp.get_context("spawn")
            go, done = ctx.Event(), ctx.Event()
            publisher = ctx.Process(target=_publish_process, args=(endpoint, count, per_message, go, done))
            publisher.start()
            go.set()
            if not sink.done.wait(300):
                raise RuntimeError(f"bridge forwarded {sink.readings} of {sink.expected} readings")
            publisher.join(60)
        finally:
            bridge.stop()
    seconds = max(sink.last - sink.first, 1e-9)
    return count / seconds, sink.readings / seconds


def run(smoke: bool) -> list[dict[str, object]]:
    counts = {1: 2_000, 10: 1_000} if smoke else {1: 40_000, 10: 20_000}
    version = _mosquitto_version()
    cores = mp.cpu_count()
    figures: list[dict[str, object]] = []
    with _mosquitto() as endpoint:
        for per_message, count in counts.items():
            label = "single-reading msgs" if per_message == 1 else f"{per_message}-reading msgs"
            conditions = CONDITIONS.format(version=version, count=count, cores=cores)
            alone = _broker_alone(endpoint, count, per_message)
            figures.append(
                {
                    "figure": f"broker alone, {label}",
                    "unit": "msg/s",
                    "value": round(alone),
                    "conditions": conditions + "; bare-socket publisher and subscriber in separate processes",
                }
            )
            messages, readings = _through_bridge(endpoint, count, per_message)
            bridge_conditions = (
                conditions
                + "; publisher process -> bridge (decode, batch 2000/50 ms, msgpack) -> in-process sink"
            )
            figures.append(
                {
                    "figure": f"bridge decode+batch, {label}",
                    "unit": "msg/s",
                    "value": round(messages),
                    "conditions": bridge_conditions,
                }
            )
            figures.append(
                {
                    "figure": f"bridge decode+batch, {label}",
                    "unit": "readings/s",
                    "value": round(readings),
                    "conditions": bridge_conditions,
                }
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="small counts: checks it runs, not how fast")
    figures = run(parser.parse_args().smoke)
    for f in figures:
        print(f"{f['figure']:<45} {f['value']:>10} {f['unit']:<11} {f['conditions']}")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
