"""Bridge metrics in the Prometheus text format (0.0.4), served at ``/metrics`` by a stdlib HTTP server
in a daemon thread. A dozen series do not justify a client library; the format is small and stable.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
LAG_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
)


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    inner = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._values: dict[tuple[str, ...], float] = {}

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        return tuple(labels[n] for n in self.labelnames)

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        with self._lock:
            items = sorted(self._values.items())
        lines += [f"{self.name}{_labels(self.labelnames, k)} {_fmt(v)}" for k, v in items]
        return lines


class Counter(_Metric):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Metric):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[self._key(labels)] = value


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_text)
        self.buckets = (*sorted(buckets), math.inf)
        self._counts = [0] * len(self.buckets)
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        with self._lock:
            self._sum += value
            self._count += 1
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    self._counts[i] += 1
                    break

    @property
    def count(self) -> int:
        return self._count

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            cumulative = 0
            for bound, n in zip(self.buckets, self._counts, strict=True):
                cumulative += n
                lines.append(f'{self.name}_bucket{{le="{_fmt(bound)}"}} {cumulative}')
            lines.append(f"{self.name}_sum {_fmt(self._sum)}")
            lines.append(f"{self.name}_count {self._count}")
        return lines


class BridgeMetrics:
    """Every series the bridge exports, created together so names live in one place."""

    def __init__(self) -> None:
        p = "celltrail_bridge_"
        self.messages_in = Counter(f"{p}messages_total", "MQTT messages received, by payload kind", ["kind"])
        self.readings_decoded = Counter(f"{p}readings_decoded_total", "Readings decoded from good payloads")
        self.readings_forwarded = Counter(
            f"{p}readings_forwarded_total", "Readings accepted by the backend (HTTP 200)"
        )
        self.duplicates_dropped = Counter(
            f"{p}duplicates_dropped_total", "Readings dropped as repeats of a (logger, ts) in the same batch"
        )
        self.dead_letters = Counter(f"{p}dead_letters_total", "Payloads turned into dead letters", ["kind"])
        self.batches = Counter(f"{p}batches_total", "Batches by what became of them", ["outcome"])
        self.buffer_depth = Gauge(f"{p}buffer_depth_batches", "Batches waiting in the disk buffer")
        self.buffer_bytes = Gauge(f"{p}buffer_bytes", "Bytes of batches waiting in the disk buffer")
        self.buffer_fill = Gauge(f"{p}buffer_fill_ratio", "Disk buffer use, 0..1")
        self.unacked = Gauge(f"{p}unacked_messages", "MQTT messages received but not yet acknowledged")
        self.connected = Gauge(f"{p}mqtt_connected", "1 while connected to the broker")
        self.lag = Histogram(
            f"{p}forward_lag_seconds", "From MQTT receipt to the backend's commit, per batch", LAG_BUCKETS
        )
        self.reading_age = Gauge(
            f"{p}newest_reading_age_seconds", "Age of the newest reading of the last batch the backend stored"
        )

    def all(self) -> list[_Metric]:
        return [v for v in vars(self).values() if isinstance(v, _Metric)]

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.all():
            lines += metric.render()
        return "\n".join(lines) + "\n"


class MetricsServer:
    def __init__(self, metrics: BridgeMetrics, host: str, port: int) -> None:
        handler = _handler_for(metrics)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="bridge-metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(metrics: BridgeMetrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Scrapes every few seconds would drown the bridge's own log.
            return

    return Handler
