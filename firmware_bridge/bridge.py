"""The bridge process assembled: MQTT in -> pure decode -> forwarder -> backend, with metrics.

This is the composition root: settings come in, every part is built here and handed its collaborators,
nothing is global. ``Bridge(settings, sender=...)`` accepts another BatchSender so tests and the
benchmark can put an in-process sink where the HTTP client would be.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Final

from firmware_bridge import payloads, topics
from firmware_bridge.buffer import DiskBuffer
from firmware_bridge.forwarder import Forwarder
from firmware_bridge.ingest_client import BatchSender, IngestClient
from firmware_bridge.ingest_contract import DeadLetter
from firmware_bridge.metrics import BridgeMetrics, MetricsServer
from firmware_bridge.mqtt import AckToken, BridgeConnection
from firmware_bridge.settings import BridgeSettings

log = logging.getLogger(__name__)

DEAD_LETTER_LOGS_PER_MINUTE: Final = 20


class _LogLimiter:
    """A misbehaving fleet can send thousands of bad payloads a second; log a sample, count them all."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._window_start = 0.0
        self._logged = 0
        self._suppressed = 0

    def allow(self, now: float) -> bool:
        if now - self._window_start >= 60.0:
            if self._suppressed:
                log.warning(
                    "%d more dead letters in the last minute were not logged one by one", self._suppressed
                )
            self._window_start, self._logged, self._suppressed = now, 0, 0
        if self._logged < self._per_minute:
            self._logged += 1
            return True
        self._suppressed += 1
        return False


class Bridge:
    def __init__(self, settings: BridgeSettings, *, sender: BatchSender | None = None) -> None:
        self.settings = settings
        self.metrics = BridgeMetrics()
        self._limits = payloads.Limits(max_future_s=settings.max_future_s)
        self._sender: BatchSender = sender or IngestClient(
            settings.backend_url,
            settings.username,
            settings.password,
            settings.http_timeout_s,
            api_key=settings.api_key,
        )
        self._buffer = DiskBuffer(settings.buffer_dir, settings.buffer_max_bytes)
        self.connection = BridgeConnection(settings, self._on_message)
        self.forwarder = Forwarder(
            bridge_id=settings.client_id,
            buffer=self._buffer,
            sender=self._sender,
            metrics=self.metrics,
            ack=self.connection.ack,
            batch_size=settings.batch_size,
            batch_ms=settings.batch_ms,
            retry_max_s=settings.retry_max_s,
            max_unacked=settings.inflight,
        )
        self._metrics_server: MetricsServer | None = None
        self._dead_letter_log = _LogLimiter(DEAD_LETTER_LOGS_PER_MINUTE)
        self._stopped = False

    @property
    def metrics_port(self) -> int | None:
        return self._metrics_server.port if self._metrics_server else None

    @property
    def buffer(self) -> DiskBuffer:
        return self._buffer

    def start(self) -> None:
        log.info("starting bridge %s with %r", self.settings.client_id, self.settings)
        if self.settings.metrics_port:
            self._metrics_server = MetricsServer(
                self.metrics, self.settings.metrics_host, self.settings.metrics_port
            )
            self._metrics_server.start()
            log.info("metrics at http://%s:%d/metrics", self.settings.metrics_host, self._metrics_server.port)
        self.forwarder.start()
        self.connection.start()

    def stop(self) -> None:
        """Stop taking messages, commit what was received, say offline, disconnect. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        log.info("stopping bridge %s", self.settings.client_id)
        self.connection.pause()
        self.forwarder.stop()
        self.connection.stop()
        if self._metrics_server is not None:
            self._metrics_server.stop()
        self._sender.close()
        self._buffer.close()

    def run(self, stop: threading.Event) -> bool:
        """Run until ``stop`` is set (the CLI sets it on SIGINT/SIGTERM). False if the forwarder died:
        the process should then exit non-zero so its supervisor restarts it, as nothing would be
        acknowledged any more."""
        self.start()
        healthy = True
        try:
            while not stop.wait(1.0):
                self.metrics.connected.set(1 if self.connection.connected else 0)
                if not self.forwarder.alive:
                    log.critical("the forwarder stopped; exiting so the bridge can be restarted")
                    healthy = False
                    break
        finally:
            self.stop()
        return healthy

    def _on_message(self, topic: str, payload: bytes, retained: bool, token: AckToken) -> None:
        received_at = datetime.now(UTC)
        parsed = topics.parse_topic(topic)
        self.metrics.messages_in.inc(kind=parsed.kind.value if parsed else "unknown")
        result = payloads.decode_message(topic, payload, received_at, retained=retained, limits=self._limits)
        if isinstance(result, DeadLetter):
            self.metrics.dead_letters.inc(kind=result.kind)
            if self._dead_letter_log.allow(time.monotonic()):
                log.warning("dead letter on %s (%s): %s", topic, result.kind, result.reason)
        else:
            self.metrics.readings_decoded.inc(len(result.readings))
        self.forwarder.submit(result, token)
