"""Replaying the queue: in order, exactly once in effect, through outages, lost answers and logins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from scanner_standin import Refusal, Running, StandIn

from scanner.client import BackendClient, SendResult
from scanner.queue import QueuedScan, ScanQueue, ScanState
from scanner.sender import Drain, Sender

TOKEN = "token-for-sender-tests"


@pytest.fixture
def backend() -> Iterator[Running]:
    running = Running(StandIn())
    running.standin.tokens.add(TOKEN)
    yield running
    running.stop()


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[ScanQueue]:
    queue = ScanQueue(tmp_path / "queue.sqlite3")
    yield queue
    queue.close()


def _enqueue(queue: ScanQueue, backend: str, n: int, code: str = "SHP-2026-000123") -> list[str]:
    keys = []
    for i in range(n):
        key = f"key-{i:08d}"
        body = {
            "idempotency_key": key,
            "action": "pickup",
            "site": "CRX-ZRH",
            "codes": [code],
            "device_time": "2026-03-01T10:00:00.000Z",
            "gps": None,
            "handover_to": None,
            "storage_location": None,
            "reason": None,
        }
        queue.enqueue(backend, key, json.dumps(body).encode(), f"scan {i}")
        keys.append(key)
    return keys


def _sender(
    queue: ScanQueue, backend: Running, token: str = TOKEN, **kwargs: float
) -> tuple[Sender, list[str]]:
    results: list[str] = []

    def record(scan: QueuedScan, result: SendResult) -> None:
        results.append(f"{scan.idempotency_key}:{type(result).__name__}")

    return Sender(queue, BackendClient(backend.url, token), on_result=record, **kwargs), results


def test_everything_queued_is_sent_in_order_and_marked(queue: ScanQueue, backend: Running) -> None:
    keys = _enqueue(queue, backend.url, 5)
    sender, _ = _sender(queue, backend)

    assert sender.drain() is Drain.IDLE

    assert backend.standin.accepted_keys() == keys
    assert [s.state for s in queue.scans()] == [ScanState.ACCEPTED] * 5
    assert all(json.loads(s.response or b"")["outcome"] == "accepted" for s in queue.scans())


def test_an_outage_stops_at_the_oldest_scan_and_resumes_there(queue: ScanQueue, backend: Running) -> None:
    keys = _enqueue(queue, backend.url, 3)
    sender, results = _sender(queue, backend)
    backend.standin.fail_next = 2

    assert sender.drain() is Drain.RETRY
    assert sender.drain() is Drain.RETRY
    assert queue.count_pending() == 3  # nothing skipped past the scan that got no answer
    assert sender.drain() is Drain.IDLE

    assert backend.standin.accepted_keys() == keys
    assert results[:2] == [f"{keys[0]}:Retry"] * 2
    (first, *_) = queue.scans()
    assert first.attempts == 3


def test_a_lost_answer_is_resent_and_recorded_once(queue: ScanQueue, backend: Running) -> None:
    keys = _enqueue(queue, backend.url, 2)
    sender, _ = _sender(queue, backend)
    backend.standin.drop_next = 1  # the backend records the scan, then the connection breaks

    assert sender.drain() is Drain.RETRY
    assert queue.count_pending() == 2
    assert sender.drain() is Drain.IDLE

    assert backend.standin.accepted_keys() == keys  # each once, in order
    attempts = [a["idempotency_key"] for a in backend.standin.attempts]
    assert attempts == [keys[0], keys[0], keys[1]]


def test_a_refusal_is_recorded_and_sending_moves_on(queue: ScanQueue, backend: Running) -> None:
    refused = _enqueue(queue, backend.url, 1, code="SHP-2026-000666")
    backend.standin.refuse["SHP-2026-000666"] = Refusal(409, "out_of_order", "not picked up yet")
    sender, results = _sender(queue, backend)
    (later,) = [k for k in _more(queue, backend.url)]

    assert sender.drain() is Drain.IDLE

    scans = {s.idempotency_key: s for s in queue.scans()}
    assert scans[refused[0]].state is ScanState.REFUSED
    assert json.loads(scans[refused[0]].response or b"")["refusal"] == "out_of_order"
    assert scans[later].state is ScanState.ACCEPTED
    assert results == [f"{refused[0]}:Refused", f"{later}:Accepted"]
    assert sender.drain() is Drain.IDLE
    assert len(backend.standin.attempts) == 2  # the refusal is never retried


def _more(queue: ScanQueue, backend: str) -> list[str]:
    key = "key-later-0001"
    body = {
        "idempotency_key": key,
        "action": "pickup",
        "site": "CRX-ZRH",
        "codes": ["SHP-2026-000124"],
        "device_time": "2026-03-01T10:00:00.000Z",
    }
    queue.enqueue(backend, key, json.dumps(body).encode())
    return [key]


def test_401_keeps_everything_queued_until_a_new_login(queue: ScanQueue, backend: Running) -> None:
    keys = _enqueue(queue, backend.url, 2)
    sender, _ = _sender(queue, backend, token="expired")

    assert sender.drain() is Drain.LOGIN
    assert queue.count_pending() == 2
    assert queue.scans()[0].last_error is not None

    relogged, _ = _sender(queue, backend)
    assert relogged.drain() is Drain.IDLE
    assert backend.standin.accepted_keys() == keys


def test_two_senders_on_one_queue_take_turns(queue: ScanQueue, backend: Running) -> None:
    _enqueue(queue, backend.url, 1)
    first, _ = _sender(queue, backend)
    second, _ = _sender(queue, backend)
    assert queue.acquire_lease(first.owner, 60)
    assert second.drain() is Drain.BUSY
    assert first.drain() is Drain.IDLE
    assert len(backend.standin.events) == 1


def test_the_sender_thread_sends_when_woken_and_settles(queue: ScanQueue, backend: Running) -> None:
    sender, _ = _sender(queue, backend)
    sender.start()
    try:
        keys = _enqueue(queue, backend.url, 3)
        sender.wake()
        assert sender.wait_settled(10)
        assert backend.standin.accepted_keys() == keys
    finally:
        sender.stop()


def test_backoff_doubles_with_jitter_up_to_a_cap(queue: ScanQueue, backend: Running) -> None:
    sender, _ = _sender(queue, backend, backoff_initial=1.0, backoff_max=8.0)
    delays = [sender.next_delay() for _ in range(6)]
    for delay, nominal in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert 0.8 * nominal <= delay <= 1.2 * nominal
