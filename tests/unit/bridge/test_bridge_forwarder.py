"""The forwarding pipeline with a scripted sender: ack only after commit, in order; disk when the backend
fails; replay in order; refuse-for-good goes aside; a full buffer holds acknowledgements back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from firmware_bridge.buffer import DiskBuffer
from firmware_bridge.forwarder import Forwarder
from firmware_bridge.ingest_client import Outcome, SendResult
from firmware_bridge.ingest_contract import IngestBatch, IngestReading, decode_batch
from firmware_bridge.metrics import BridgeMetrics
from firmware_bridge.payloads import Decoded

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class ScriptedSender:
    def __init__(self) -> None:
        self.outcome = Outcome.STORED
        self.delivered: list[IngestBatch] = []
        self.attempts = 0
        self.lock = threading.Lock()

    def send(self, body: bytes) -> SendResult:
        with self.lock:
            self.attempts += 1
            if self.outcome is Outcome.STORED:
                self.delivered.append(decode_batch(body))
            return SendResult(self.outcome, f"scripted {self.outcome.value}")

    def close(self) -> None:
        return

    def readings(self) -> list[tuple[str, datetime]]:
        with self.lock:
            return [(r.logger_id, r.ts) for b in self.delivered for r in b.readings]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.005)


def message(n: int, count: int = 1) -> Decoded:
    return Decoded(
        [
            IngestReading(
                logger_id="LGR-0001", ts=T0 + timedelta(minutes=n * 100 + i), temp_c=5.0, received_at=T0
            )
            for i in range(count)
        ],
        None,
    )


@pytest.fixture
def sender() -> ScriptedSender:
    return ScriptedSender()


@pytest.fixture
def make(tmp_path, sender) -> Iterator[Callable[..., tuple[Forwarder, list[object], DiskBuffer]]]:
    made: list[Forwarder] = []

    def build(
        max_bytes: int = 10**7, batch_size: int = 10, batch_ms: int = 10, max_unacked: int = 2000
    ) -> tuple[Forwarder, list[object], DiskBuffer]:
        acks: list[object] = []
        buffer = DiskBuffer(tmp_path / f"buf{len(made)}", max_bytes)
        forwarder = Forwarder(
            bridge_id="test-bridge",
            buffer=buffer,
            sender=sender,
            metrics=BridgeMetrics(),
            ack=acks.extend,
            batch_size=batch_size,
            batch_ms=batch_ms,
            retry_max_s=0.05,
            max_unacked=max_unacked,
        )
        forwarder.start()
        made.append(forwarder)
        return forwarder, acks, buffer

    yield build
    for forwarder in made:
        forwarder.stop()


def test_acknowledges_in_order_after_the_backend_stored(make, sender):
    forwarder, acks, _ = make()
    for n in range(25):
        forwarder.submit(message(n), token=n)
    wait_for(lambda: len(acks) == 25)
    assert acks == list(range(25))
    assert len(sender.readings()) == 25
    assert all(b.bridge_id == "test-bridge" for b in sender.delivered)


def test_buffers_while_the_backend_fails_then_replays_in_order(make, sender):
    sender.outcome = Outcome.RETRY
    forwarder, acks, buffer = make()
    for n in range(30):
        forwarder.submit(message(n, count=3), token=n)
    wait_for(lambda: len(acks) == 30)  # acknowledged because fsync'd on disk
    assert acks == list(range(30))
    assert buffer.depth > 0
    assert sender.readings() == []
    sender.outcome = Outcome.STORED
    wait_for(lambda: buffer.depth == 0)
    expected = [r for n in range(30) for r in [(x.logger_id, x.ts) for x in message(n, 3).readings]]
    assert sender.readings() == expected  # in order, each once


def test_refused_batches_go_aside_and_are_acknowledged(make, sender):
    sender.outcome = Outcome.REJECT
    forwarder, acks, buffer = make()
    forwarder.submit(message(1), token="a")
    wait_for(lambda: acks == ["a"])
    assert len(buffer.rejected_files()) == 1


def test_a_full_buffer_holds_acknowledgements_until_the_backend_returns(make, sender):
    sender.outcome = Outcome.RETRY
    forwarder, acks, buffer = make(max_bytes=600, batch_size=2)
    for n in range(40):
        forwarder.submit(message(n, count=2), token=n)
    wait_for(lambda: buffer.fill_ratio > 0.5 and forwarder.unacked > 0)
    time.sleep(0.1)  # give it the chance to do wrong
    assert len(acks) < 40
    assert acks == list(range(len(acks)))
    sender.outcome = Outcome.STORED
    wait_for(lambda: len(acks) == 40)
    assert acks == list(range(40))
    assert len(set(sender.readings())) == 80


def test_stop_commits_the_open_batch(make, sender):
    forwarder, acks, _ = make(batch_size=1000, batch_ms=60_000)  # only the stop can close this batch
    forwarder.submit(message(1), token="last")
    forwarder.stop()
    assert acks == ["last"]
    assert len(sender.readings()) == 1


def test_submit_blocks_when_the_window_of_unacknowledged_messages_is_full(make, sender):
    sender.outcome = Outcome.RETRY
    forwarder, acks, _ = make(max_bytes=100, batch_size=1, max_unacked=3)
    feeder = threading.Thread(target=lambda: [forwarder.submit(message(n), token=n) for n in range(10)])
    feeder.start()
    wait_for(lambda: forwarder.unacked == 3)
    feeder.join(0.2)
    assert feeder.is_alive()  # held back: this is what stops the bridge reading from the broker
    sender.outcome = Outcome.STORED
    feeder.join(10)
    wait_for(lambda: len(acks) == 10)
    assert acks == list(range(10))
