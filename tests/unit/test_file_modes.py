"""Files Celltrail writes that hold data are readable by its own account only (0600, directories 0700),
whatever the umask, and a file left from an earlier run with a wider mode is narrowed.
(`celltrail up` as a whole: tests/e2e/test_up.py; a backup: tests/security/test_security_hardening.py.)"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.embedded.mqtt import EmbeddedBroker
from backend.private_files import open_private, private_directory, touch_private, write_private
from firmware_bridge.buffer import DB_NAME, DiskBuffer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def wide_umask() -> Iterator[None]:
    # The usual login umask (022) would make files 0644: the code must not rely on the umask.
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_private_files_are_created_0600_and_narrowed_when_they_exist(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.log"
    write_private(fresh, b"data")
    assert mode(fresh) == 0o600
    old = tmp_path / "old.log"
    old.write_bytes(b"kept ")
    old.chmod(0o644)
    with open_private(old, "ab") as handle:
        handle.write(b"appended")
    assert (mode(old), old.read_bytes()) == (0o600, b"kept appended")
    touched = tmp_path / "touched.log"
    touched.write_bytes(b"x")
    touched.chmod(0o666)
    touch_private(touched)
    assert (mode(touched), touched.read_bytes()) == (0o600, b"x")
    folder = private_directory(tmp_path / "a" / "b")
    assert mode(folder) == 0o700
    with pytest.raises(ValueError, match="writes only"):
        open_private(fresh, "rb")


def test_the_bridge_buffer_database_its_journal_and_rejected_batches_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "bridge-buffer"
    buffer = DiskBuffer(directory, max_bytes=100_000)
    try:
        buffer.put("batch-1", b"readings" * 10, readings=10)
        rejected = buffer.reject("batch-2", b"refused", "HTTP 422: bad batch")
        files = sorted(p for p in directory.rglob("*") if p.is_file())
        assert {p.name for p in files} >= {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", rejected.name}
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert mode(directory) == 0o700
        assert mode(rejected.parent) == 0o700
    finally:
        buffer.close()


def test_a_buffer_from_an_earlier_run_with_wider_modes_is_narrowed(tmp_path: Path) -> None:
    first = DiskBuffer(tmp_path, max_bytes=100_000)
    first.put("batch-1", b"x" * 100)
    first.close()
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    tmp_path.chmod(0o755)
    second = DiskBuffer(tmp_path, max_bytes=100_000)
    try:
        assert second.depth == 1
        assert {p.name: mode(p) for p in tmp_path.iterdir()} == {p.name: 0o600 for p in tmp_path.iterdir()}
        assert mode(tmp_path) == 0o700
    finally:
        second.close()


def test_the_embedded_broker_config_log_and_sessions_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "mqtt"
    broker = EmbeddedBroker(directory).start()
    try:
        assert mode(directory) == 0o700
        assert mode(directory / "broker.log") == 0o600
        if broker.kind == "mosquitto":
            assert mode(directory / "mosquitto.conf") == 0o600
            assert "persistence true" in (directory / "mosquitto.conf").read_text()
    finally:
        broker.stop()
    wide = [p.name for p in directory.iterdir() if p.is_file() and mode(p) & 0o077]
    assert wide == []
