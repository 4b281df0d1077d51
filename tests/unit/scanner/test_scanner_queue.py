"""The offline queue: durable before sending, in order, never deleted, one sender at a time."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from scanner.queue import ScanQueue, ScanState

BACKEND = "http://backend.test"


@pytest.fixture
def queue(tmp_path: Path) -> ScanQueue:
    return ScanQueue(tmp_path / "q" / "scanner-queue.sqlite3")


def test_an_enqueued_scan_is_on_disk_when_enqueue_returns(queue: ScanQueue) -> None:
    scan = queue.enqueue(BACKEND, "key-00000001", b'{"a": 1}', "shipment SHP-2026-000123")

    # Another connection (another process after a crash) sees it without any further commit.
    other = sqlite3.connect(queue.path)
    rows = other.execute("SELECT idempotency_key, state, body FROM scans").fetchall()
    other.close()
    assert rows == [("key-00000001", "pending", b'{"a": 1}')]
    assert scan.state is ScanState.PENDING
    assert scan.subject == "shipment SHP-2026-000123"


def test_the_queue_runs_in_wal_mode_with_full_sync_and_private_files(queue: ScanQueue) -> None:
    db = queue._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert stat.S_IMODE(queue.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(queue.path.parent.stat().st_mode) == 0o700


def test_pending_scans_come_out_oldest_first_per_backend(queue: ScanQueue) -> None:
    for n in range(3):
        queue.enqueue(BACKEND, f"key-a-{n:06d}", b"{}")
    queue.enqueue("http://other.test", "key-b-000000", b"{}")

    first = queue.next_pending(BACKEND)
    assert first is not None
    assert first.idempotency_key == "key-a-000000"
    queue.record_answer(first.seq, ScanState.ACCEPTED, 201, b'{"event_id": 1}')
    second = queue.next_pending(BACKEND)
    assert second is not None
    assert second.idempotency_key == "key-a-000001"
    assert queue.count_pending(BACKEND) == 2
    assert queue.count_pending() == 3


def test_answers_are_kept_and_the_first_answer_wins(queue: ScanQueue) -> None:
    scan = queue.enqueue(BACKEND, "key-00000001", b"{}")
    queue.record_attempt(scan.seq, "backend unreachable")
    queue.record_answer(scan.seq, ScanState.REFUSED, 409, b'{"refusal": "out_of_order"}')
    queue.record_answer(scan.seq, ScanState.ACCEPTED, 201, b"{}")
    queue.record_attempt(scan.seq, "late failure")

    (kept,) = queue.scans()
    assert kept.state is ScanState.REFUSED
    assert kept.http_status == 409
    assert kept.response == b'{"refusal": "out_of_order"}'
    assert kept.attempts == 2
    assert kept.last_error is None
    with pytest.raises(ValueError, match="accepted or refused"):
        queue.record_answer(scan.seq, ScanState.PENDING, 200, b"")


def test_a_queue_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    first = ScanQueue(path)
    first.enqueue(BACKEND, "key-00000001", b"{}")
    first.close()
    again = ScanQueue(path)
    assert [s.idempotency_key for s in again.scans(ScanState.PENDING)] == ["key-00000001"]


def test_an_idempotency_key_is_queued_once(queue: ScanQueue) -> None:
    queue.enqueue(BACKEND, "key-00000001", b"{}")
    with pytest.raises(sqlite3.IntegrityError):
        queue.enqueue(BACKEND, "key-00000001", b"{}")


def test_only_one_sender_holds_the_lease_until_it_expires_or_is_released(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    one, two = ScanQueue(path), ScanQueue(path)
    assert one.acquire_lease("one", 60)
    assert not two.acquire_lease("two", 60)
    assert one.acquire_lease("one", 60)  # renewing
    one.release_lease("one")
    assert two.acquire_lease("two", 0.0)
    assert one.acquire_lease("one", 60)  # two's lease has expired


def test_one_pending_scan_per_item_across_sessions(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    item = "pickup|CRX-ZRH|shipment:SHP-2026-000123"
    first = ScanQueue(path)
    scan = first.enqueue(BACKEND, "key-00000001", b"{}", "shipment SHP-2026-000123", item)
    first.close()

    again = ScanQueue(path)  # a new session
    same = again.enqueue(BACKEND, "key-00000002", b"{}", "shipment SHP-2026-000123", item)
    assert same.idempotency_key == scan.idempotency_key
    assert [s.idempotency_key for s in again.scans()] == ["key-00000001"]
    # Another site, action or backend is another scan; so is the same item once the first is answered.
    again.enqueue(BACKEND, "key-00000003", b"{}", "", "pickup|HOSP-BSL|shipment:SHP-2026-000123")
    again.enqueue("http://other.test", "key-00000004", b"{}", "", item)
    again.record_answer(scan.seq, ScanState.ACCEPTED, 201, b"{}")
    later = again.enqueue(BACKEND, "key-00000005", b"{}", "", item)
    assert later.idempotency_key == "key-00000005"
    assert again.count_pending() == 3
    # Scans without an item (older sessions) are never merged.
    again.enqueue(BACKEND, "key-00000006", b"{}")
    again.enqueue(BACKEND, "key-00000007", b"{}")
    assert again.count_pending() == 5


def test_a_queue_from_before_items_gains_the_column_and_keeps_its_scans(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE scans (seq INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT NOT NULL UNIQUE, "
        "backend TEXT NOT NULL, body BLOB NOT NULL, subject TEXT NOT NULL DEFAULT '', "
        "state TEXT NOT NULL DEFAULT 'pending', created_at TEXT NOT NULL, attempts INTEGER NOT NULL "
        "DEFAULT 0, last_attempt_at TEXT, last_error TEXT, http_status INTEGER, response BLOB, "
        "answered_at TEXT);"
        "INSERT INTO scans (idempotency_key, backend, body, created_at) "
        "VALUES ('key-00000001', 'http://backend.test', x'7b7d', '2026-01-01T00:00:00Z');"
    )
    old.close()
    queue = ScanQueue(path)
    assert [s.idempotency_key for s in queue.scans(ScanState.PENDING)] == ["key-00000001"]
    queue.enqueue(BACKEND, "key-00000002", b"{}", "", "store|S|unit:X")
    assert (
        queue.enqueue(BACKEND, "key-00000003", b"{}", "", "store|S|unit:X").idempotency_key == "key-00000002"
    )
