"""Ingest metrics in the Prometheus text format. Counters live in this process: with several uvicorn
workers each worker counts its own requests, and Prometheus sums the scrapes (or scrape each worker).

The series types come from the bridge's small stdlib implementation, so both processes speak the same
format without a client library.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from firmware_bridge.metrics import CONTENT_TYPE, Counter, Gauge, Histogram

__all__ = ["CONTENT_TYPE", "IngestMetrics"]

DURATION_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestMetrics:
    def __init__(self) -> None:
        p = "celltrail_ingest_"
        self.batches = Counter(f"{p}batches_total", "Ingest requests by outcome", ["outcome"])
        self.readings_stored = Counter(f"{p}readings_stored_total", "Readings newly stored")
        self.duplicates = Counter(
            f"{p}readings_duplicate_total", "Readings already stored (redelivery), not stored again"
        )
        self.dead_letters = Counter(f"{p}dead_letters_total", "Dead letters newly stored, by kind", ["kind"])
        self.statuses = Counter(f"{p}statuses_total", "Logger status messages received")
        self.duration = Histogram(
            f"{p}duration_seconds", "Ingest request handling, body read to commit", DURATION_BUCKETS
        )
        self.lag = Gauge(
            f"{p}last_lag_seconds",
            "At the last commit: commit time minus the bridge's receipt of the newest reading in the batch",
        )
        self.newest_received = Gauge(
            f"{p}newest_received_timestamp_seconds",
            "Unix time the bridge received the newest reading stored so far (alert on time() minus this)",
        )

    def stored(
        self,
        *,
        stored: int,
        duplicates: int,
        statuses: int,
        dead_letter_kinds: list[str],
        newest_received: datetime | None,
        seconds: float,
    ) -> None:
        self.batches.inc(outcome="stored")
        self.readings_stored.inc(stored)
        self.duplicates.inc(duplicates)
        self.statuses.inc(statuses)
        for kind in dead_letter_kinds:
            self.dead_letters.inc(kind=kind)
        self.duration.observe(seconds)
        if newest_received is not None:
            self.lag.set(max((datetime.now(UTC) - newest_received).total_seconds(), 0.0))
            stamp = newest_received.timestamp()
            if stamp > self.newest_received.value():
                self.newest_received.set(stamp)

    def refused(self, outcome: str) -> None:
        self.batches.inc(outcome=outcome)

    def render(self) -> str:
        lines: list[str] = []
        for metric in (
            self.batches,
            self.readings_stored,
            self.duplicates,
            self.dead_letters,
            self.statuses,
            self.duration,
            self.lag,
            self.newest_received,
        ):
            lines += metric.render()
        return "\n".join(lines) + "\n"
