"""Micro-batching by size and by time, with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from firmware_bridge.batcher import Batcher
from firmware_bridge.ingest_contract import DeadLetter, IngestReading

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def readings(logger: str, count: int, start: int = 0) -> list[IngestReading]:
    return [
        IngestReading(logger_id=logger, ts=T0 + timedelta(minutes=start + i), temp_c=5.0, received_at=T0)
        for i in range(count)
    ]


def test_closes_by_size():
    batcher = Batcher(max_items=10, max_delay_s=1.0)
    for n in range(4):
        batcher.add(0.0, ack=n, readings=readings("LGR-0001", 3, start=3 * n))
    (batch,) = batcher.pop_ready(0.0)
    assert len(batch.readings) == 10
    assert batch.acks == [0, 1, 2]  # message 3 ends in the next batch, so its ack waits for it
    assert batcher.pop_ready(0.5) == []
    (rest,) = batcher.pop_ready(1.0)
    assert len(rest.readings) == 2
    assert rest.acks == [3]


def test_closes_by_time():
    batcher = Batcher(max_items=500, max_delay_s=0.05)
    batcher.add(10.0, ack="a", readings=readings("LGR-0001", 1))
    assert batcher.deadline() == 10.05
    batcher.add(10.03, ack="b", readings=readings("LGR-0001", 1, start=1))
    assert batcher.pop_ready(10.049) == []
    (batch,) = batcher.pop_ready(10.05)
    assert batch.acks == ["a", "b"]
    assert batcher.deadline() is None


def test_force_flushes_a_young_batch():
    batcher = Batcher(max_items=500, max_delay_s=10)
    batcher.add(0.0, ack=1, readings=readings("LGR-0001", 1))
    assert len(batcher.pop_ready(0.0, force=True)) == 1


def test_a_backlog_larger_than_a_batch_is_split_and_acked_with_its_last_part():
    batcher = Batcher(max_items=100, max_delay_s=1.0)
    batcher.add(0.0, ack="big", readings=readings("LGR-0001", 250))
    batches = batcher.pop_ready(0.0, force=True)
    assert [len(b.readings) for b in batches] == [100, 100, 50]
    assert [b.acks for b in batches] == [[], [], ["big"]]


def test_repeats_within_a_batch_are_dropped_and_counted():
    batcher = Batcher(max_items=100, max_delay_s=1.0)
    batcher.add(0.0, ack=1, readings=readings("LGR-0001", 5))
    batcher.add(0.0, ack=2, readings=readings("LGR-0001", 5))  # a duplicate delivery
    batcher.add(0.0, ack=3, readings=readings("LGR-0002", 5))
    (batch,) = batcher.pop_ready(0.0, force=True)
    assert len(batch.readings) == 10
    assert batch.duplicates_dropped == 5
    assert batch.acks == [1, 2, 3]


def test_statuses_and_dead_letters_count_toward_size():
    batcher = Batcher(max_items=2, max_delay_s=1.0)
    letter = DeadLetter(topic="t", payload=b"x", kind="malformed", reason="r", received_at=T0)
    batcher.add(0.0, ack=1, dead_letter=letter)
    batcher.add(0.0, ack=2, dead_letter=letter)
    (batch,) = batcher.pop_ready(0.0)
    assert len(batch.dead_letters) == 2
