"""Micro-batching: gather decoded messages into batches closed by size or by age. Pure: the caller
passes the (monotonic) time, so tests drive it without sleeping.

A batch closes when it holds ``max_items`` items (readings + statuses + dead letters) or when its first
item is ``max_delay_s`` old. A backlog message larger than a batch is split over consecutive batches;
its MQTT acknowledgement rides with the batch holding its last part, which is committed after the
earlier parts because batches are committed in order. Within one batch a repeated (logger, timestamp)
is dropped: the backend would ignore it anyway, and this keeps duplicate deliveries off the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from firmware_bridge.ingest_contract import DeadLetter, IngestReading, LoggerStatus


@dataclass(slots=True)
class PendingBatch:
    first_at: float
    readings: list[IngestReading] = field(default_factory=list)
    statuses: list[LoggerStatus] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Opaque acknowledgement tokens of the MQTT messages completed by this batch, in arrival order.
    acks: list[object] = field(default_factory=list)
    duplicates_dropped: int = 0
    # Filled once by the forwarder, so a batch held back for lack of disk space is encoded only once.
    batch_id: str = ""
    body: bytes = b""
    _seen: set[tuple[str, datetime]] = field(default_factory=set)

    @property
    def size(self) -> int:
        return len(self.readings) + len(self.statuses) + len(self.dead_letters)


class Batcher:
    def __init__(self, max_items: int, max_delay_s: float) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self.max_delay_s = max_delay_s
        self._current: PendingBatch | None = None
        self._ready: list[PendingBatch] = []

    def deadline(self) -> float | None:
        """When the open batch must close, or None if nothing is waiting."""
        if self._ready:
            return float("-inf")
        return self._current.first_at + self.max_delay_s if self._current else None

    def add(
        self,
        now: float,
        ack: object,
        readings: Sequence[IngestReading] = (),
        status: LoggerStatus | None = None,
        dead_letter: DeadLetter | None = None,
    ) -> None:
        batch = self._open(now)
        if status is not None:
            batch.statuses.append(status)
        if dead_letter is not None:
            batch.dead_letters.append(dead_letter)
        for reading in readings:
            if batch.size >= self.max_items:
                self._close()
                batch = self._open(now)
            key = (reading.logger_id, reading.ts)
            if key in batch._seen:
                batch.duplicates_dropped += 1
                continue
            batch._seen.add(key)
            batch.readings.append(reading)
        batch.acks.append(ack)
        if batch.size >= self.max_items:
            self._close()

    def pop_ready(self, now: float, force: bool = False) -> list[PendingBatch]:
        """Batches to commit now, oldest first. ``force`` closes the open batch whatever its age."""
        current = self._current
        if current is not None and (force or now - current.first_at >= self.max_delay_s):
            self._close()
        ready, self._ready = self._ready, []
        return ready

    def _open(self, now: float) -> PendingBatch:
        if self._current is None:
            self._current = PendingBatch(first_at=now)
        return self._current

    def _close(self) -> None:
        if self._current is not None and (self._current.size or self._current.acks):
            self._current._seen = set()
            self._ready.append(self._current)
        self._current = None
