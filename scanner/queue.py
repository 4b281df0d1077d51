"""The offline queue: every scan is written here, durably, before it is sent.

SQLite in WAL mode with ``synchronous=FULL``: a commit returns only after the WAL is fsynced, so a scan
the operator saw as "saved" survives a crash or a pulled battery. A row is never deleted: it goes from
``pending`` to ``accepted`` or ``refused`` only when the backend gave a definitive answer, and keeps that
answer. Scans are sent in ``seq`` order, one backend at a time. A crash between sending and recording
the answer leaves the row pending; it is sent again with the same idempotency key and the backend
returns its first answer.

One pending scan per item: a scan carries an ``item`` key (action, site and what was scanned, made by
the session), and a partial unique index allows one pending row per backend and item. Scanning a label
again offline, in this session or a later one, finds the scan already waiting instead of queuing a
second one that the backend would refuse (and record, and alert) on reconnection.

Two processes may open the same queue (a scanning session and ``celltrail scan --flush``); a lease row
lets only one of them send at a time.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS scans (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    backend TEXT NOT NULL,
    body BLOB NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'accepted', 'refused')),
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    last_error TEXT,
    http_status INTEGER,
    response BLOB,
    answered_at TEXT
);
CREATE INDEX IF NOT EXISTS scans_pending ON scans (backend, seq) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS sender_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


class ScanState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class QueuedScan:
    seq: int
    idempotency_key: str
    backend: str
    body: bytes
    subject: str
    state: ScanState
    created_at: str
    attempts: int
    last_attempt_at: str | None
    last_error: str | None
    http_status: int | None
    response: bytes | None
    answered_at: str | None


# Every query below is a constant (these column names, fixed clauses) with ? parameters for all values.
_COLUMNS: Final = (
    "seq, idempotency_key, backend, body, subject, state, created_at, attempts, last_attempt_at, "
    "last_error, http_status, response, answered_at"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row(row: tuple[object, ...]) -> QueuedScan:
    seq, key, backend, body, subject, state, created, attempts, tried, error, status, response, answered = row
    return QueuedScan(
        seq=int(str(seq)),
        idempotency_key=str(key),
        backend=str(backend),
        body=bytes(body) if isinstance(body, bytes | bytearray | memoryview) else str(body).encode(),
        subject=str(subject),
        state=ScanState(str(state)),
        created_at=str(created),
        attempts=int(str(attempts)),
        last_attempt_at=None if tried is None else str(tried),
        last_error=None if error is None else str(error),
        http_status=None if status is None else int(str(status)),
        response=bytes(response) if isinstance(response, bytes | bytearray | memoryview) else None,
        answered_at=None if answered is None else str(answered),
    )


class ScanQueue:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._lock = threading.Lock()
        # Autocommit mode: each statement is its own transaction unless BEGIN is issued explicitly.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._add_item_column()
        os.chmod(path, 0o600)

    def _add_item_column(self) -> None:
        """Queues written before items were keyed lack the column; their rows keep NULL (not deduplicated)."""
        columns = {str(row[1]) for row in self._db.execute("PRAGMA table_info(scans)").fetchall()}
        if "item" not in columns:
            self._db.execute("ALTER TABLE scans ADD COLUMN item TEXT")
        self._db.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS scans_one_pending_item ON scans (backend, item) "
            "WHERE state = 'pending' AND item IS NOT NULL"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def enqueue(
        self, backend: str, idempotency_key: str, body: bytes, subject: str = "", item: str | None = None
    ) -> QueuedScan:
        """Store a scan durably; returns once it is on disk. When ``item`` is given and a scan of that item
        is already pending for ``backend``, nothing is stored and that scan is returned instead (its
        idempotency key is not ``idempotency_key``)."""
        with self._lock:
            # The pending-item index decides, atomically across processes sharing the file; a repeated
            # idempotency key still fails.
            self._db.execute(
                "INSERT INTO scans (idempotency_key, backend, body, subject, created_at, item) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (backend, item) WHERE state = 'pending' AND item IS NOT NULL DO NOTHING",
                (idempotency_key, backend, body, subject, _now(), item),
            )
        scan = self.get(idempotency_key)
        if scan is None and item is not None:
            scan = self.latest_for_item(backend, item)
        if scan is None:
            raise RuntimeError(f"scan {idempotency_key} vanished from {self.path}")
        return scan

    def latest_for_item(self, backend: str, item: str) -> QueuedScan | None:
        """The newest scan of ``item`` for ``backend`` (the pending one, if any: there is at most one)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM scans WHERE backend = ? AND item = ? "  # noqa: S608
                "ORDER BY state = 'pending' DESC, seq DESC LIMIT 1",
                (backend, item),
            ).fetchone()
        return None if row is None else _row(row)

    def get(self, idempotency_key: str) -> QueuedScan | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM scans WHERE idempotency_key = ?",  # noqa: S608
                (idempotency_key,),
            ).fetchone()
        return None if row is None else _row(row)

    def next_pending(self, backend: str) -> QueuedScan | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM scans WHERE state = 'pending' AND backend = ? "  # noqa: S608
                "ORDER BY seq LIMIT 1",
                (backend,),
            ).fetchone()
        return None if row is None else _row(row)

    def scans(self, state: ScanState | None = None, backend: str | None = None) -> list[QueuedScan]:
        clauses: list[str] = []
        params: list[str] = []
        if state is not None:
            clauses.append("state = ?")
            params.append(str(state))
        if backend is not None:
            clauses.append("backend = ?")
            params.append(backend)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            query = f"SELECT {_COLUMNS} FROM scans {where} ORDER BY seq"  # noqa: S608
            rows = self._db.execute(query, params).fetchall()
        return [_row(row) for row in rows]

    def count_pending(self, backend: str | None = None) -> int:
        return len(self.scans(ScanState.PENDING, backend))

    def record_attempt(self, seq: int, error: str | None) -> None:
        """A send that got no definitive answer: the scan stays pending."""
        with self._lock:
            self._db.execute(
                "UPDATE scans SET attempts = attempts + 1, last_attempt_at = ?, last_error = ? "
                "WHERE seq = ? AND state = 'pending'",
                (_now(), error, seq),
            )

    def record_answer(self, seq: int, state: ScanState, http_status: int, response: bytes) -> None:
        """The backend's definitive answer; the first one recorded wins."""
        if state is ScanState.PENDING:
            raise ValueError("an answer is accepted or refused")
        with self._lock:
            self._db.execute(
                "UPDATE scans SET state = ?, http_status = ?, response = ?, answered_at = ?, "
                "attempts = attempts + 1, last_attempt_at = ?, last_error = NULL "
                "WHERE seq = ? AND state = 'pending'",
                (str(state), http_status, response, _now(), _now(), seq),
            )

    def acquire_lease(self, owner: str, seconds: float) -> bool:
        """Become (or stay) the one sender for ``seconds``; False while another live process holds it."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT owner, expires FROM sender_lease WHERE id = 1").fetchone()
                if row is not None and row[0] != owner and float(row[1]) > now:
                    return False
                self._db.execute(
                    "INSERT INTO sender_lease (id, owner, expires) VALUES (1, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires = excluded.expires",
                    (owner, now + seconds),
                )
                return True
            finally:
                self._db.execute("COMMIT")

    def release_lease(self, owner: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sender_lease WHERE owner = ?", (owner,))
