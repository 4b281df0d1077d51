"""The bridge's disk queue: encoded batches wait here, in order, while the backend is down or slow.

Why SQLite in WAL mode rather than home-made segment files: a commit is atomic and, with
``synchronous=FULL``, fsync'd before ``put`` returns, which is the moment the bridge may acknowledge the
MQTT messages in the batch. After a crash the queue reopens with every committed batch and none half
written, with no framing, checksums or compaction code of our own. WAL makes a commit one sequential
append plus one fsync, and deleting the head after delivery is a cheap row delete whose pages are
reused. The queue is FIFO by an autoincrement key, so replay keeps the order batches were made in.

The bound counts the batch bodies (what we were asked to keep), not SQLite's page overhead.
Batches the backend refused as unacceptable (HTTP 400/413/422) are written to ``rejected/`` beside the
database as ``<time>-<batch_id>.msgpack`` plus a ``.txt`` with the reason, for a person to review.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Final, NamedTuple

log = logging.getLogger(__name__)

DB_NAME: Final = "queue.sqlite3"
REJECTED_DIR: Final = "rejected"
# Queued batches are readings of patients' shipments: for the bridge's own account only.
FILE_MODE: Final = 0o600
DIRECTORY_MODE: Final = 0o700
WARN_RATIO: Final = 0.8
# Warn again only after the fill level has dropped well below the threshold, so a queue hovering at
# 80% does not log on every batch.
REARM_RATIO: Final = 0.7


class BufferFull(Exception):
    """The batch does not fit; the caller must hold it (and its MQTT acks) until space frees up."""


class QueuedBatch(NamedTuple):
    row_id: int
    batch_id: str
    created_at: float
    readings: int
    body: bytes


class DiskBuffer:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        directory.chmod(DIRECTORY_MODE)
        self._lock = threading.Lock()
        # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database's mode.
        _create_private(directory / DB_NAME)
        # One connection used under a lock: the forwarder thread writes, tests and metrics may read.
        self._db = sqlite3.connect(directory / DB_NAME, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for companion in ("-wal", "-shm"):  # from an earlier run under a wider umask
            path = directory / (DB_NAME + companion)
            if path.exists():
                path.chmod(FILE_MODE)
        # FULL: the WAL is fsync'd at every commit, so a committed batch survives a power cut.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS batches ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " batch_id TEXT NOT NULL,"
            " created_at REAL NOT NULL,"
            " readings INTEGER NOT NULL,"
            " body BLOB NOT NULL)"
        )
        row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM batches").fetchone()
        self._depth: int = row[0]
        self._bytes: int = row[1]
        self._warned = False
        if self._depth:
            log.info(
                "disk buffer holds %d batches (%d bytes) from an earlier run; replaying",
                self._depth,
                self._bytes,
            )
        self._check_fill()

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def fill_ratio(self) -> float:
        return self._bytes / self.max_bytes if self.max_bytes else 1.0

    def fits(self, size: int) -> bool:
        return self._bytes + size <= self.max_bytes

    def put(self, batch_id: str, body: bytes, readings: int = 0) -> None:
        """Append a batch; when this returns the batch is on disk (fsync'd). Raises BufferFull."""
        with self._lock:
            if not self.fits(len(body)):
                raise BufferFull(f"disk buffer full: {self._bytes} of {self.max_bytes} bytes used")
            try:
                self._db.execute(
                    "INSERT INTO batches (batch_id, created_at, readings, body) VALUES (?, ?, ?, ?)",
                    (batch_id, time.time(), readings, body),
                )
            except sqlite3.Error as exc:
                # A full or failing disk is a full buffer to the caller: hold the batch, do not ack.
                log.error("disk buffer write failed: %s", exc)
                raise BufferFull(f"disk buffer write failed: {exc}") from exc
            self._depth += 1
            self._bytes += len(body)
        self._check_fill()

    def peek(self) -> QueuedBatch | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, batch_id, created_at, readings, body FROM batches ORDER BY id LIMIT 1"
            ).fetchone()
        return QueuedBatch(row[0], row[1], row[2], row[3], bytes(row[4])) if row else None

    def remove(self, item: QueuedBatch) -> None:
        with self._lock:
            deleted = self._db.execute("DELETE FROM batches WHERE id = ?", (item.row_id,)).rowcount
            if deleted:
                self._depth -= 1
                self._bytes -= len(item.body)
        self._check_fill()

    def reject(self, batch_id: str, body: bytes, reason: str) -> Path:
        """Keep a batch the backend can never accept in ``rejected/`` (fsync'd) for review."""
        folder = self.directory / REJECTED_DIR
        folder.mkdir(mode=DIRECTORY_MODE, exist_ok=True)
        stem = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{batch_id}"
        path = folder / f"{stem}.msgpack"
        _write_durably(folder / f"{stem}.txt", reason.encode("utf-8", "replace"))
        _write_durably(path, body)
        _fsync_dir(folder)
        return path

    def rejected_files(self) -> list[Path]:
        folder = self.directory / REJECTED_DIR
        return sorted(folder.glob("*.msgpack")) if folder.is_dir() else []

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _check_fill(self) -> None:
        ratio = self.fill_ratio
        if ratio > WARN_RATIO and not self._warned:
            self._warned = True
            log.warning(
                "disk buffer %.0f%% full (%d batches, %d of %d bytes): the backend is not keeping up; "
                "when full the bridge stops acknowledging MQTT messages",
                ratio * 100,
                self._depth,
                self._bytes,
                self.max_bytes,
            )
        elif ratio < REARM_RATIO:
            self._warned = False


def _create_private(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an existing file keeps its mode through O_CREAT: narrow it
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    # The new directory entries must reach the disk too, or a crash may leave files that never existed.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
