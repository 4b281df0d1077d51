"""The ingest metrics: Prometheus text, and a newest-receipt timestamp that never goes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.services.metrics import IngestMetrics


def test_counters_and_the_newest_receipt_only_move_forward():
    metrics = IngestMetrics()
    newer = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    metrics.stored(
        stored=3,
        duplicates=1,
        statuses=2,
        dead_letter_kinds=["crc", "crc"],
        newest_received=newer,
        seconds=0.02,
    )
    # A backlog replayed from the bridge's disk buffer arrives later but was received earlier.
    metrics.stored(
        stored=5,
        duplicates=0,
        statuses=0,
        dead_letter_kinds=["unknown_logger"],
        newest_received=newer - timedelta(hours=1),
        seconds=0.2,
    )
    metrics.refused("invalid")
    text = metrics.render()
    assert "celltrail_ingest_readings_stored_total 8\n" in text
    assert "celltrail_ingest_readings_duplicate_total 1\n" in text
    assert 'celltrail_ingest_dead_letters_total{kind="crc"} 2\n' in text
    assert 'celltrail_ingest_dead_letters_total{kind="unknown_logger"} 1\n' in text
    assert 'celltrail_ingest_batches_total{outcome="invalid"} 1\n' in text
    assert 'celltrail_ingest_batches_total{outcome="stored"} 2\n' in text
    assert 'celltrail_ingest_duration_seconds_bucket{le="0.025"} 1\n' in text
    assert 'celltrail_ingest_duration_seconds_bucket{le="0.25"} 2\n' in text
    assert f"celltrail_ingest_newest_received_timestamp_seconds {int(newer.timestamp())}\n" in text
    assert metrics.lag.value() >= 2 * 3600
