"""Retention of readings (issue 26): months past CELLTRAIL_READINGS_HOT_MONTHS are written to Parquet
files with a signed manifest and their partitions dropped only once the file is verified; the readings
look-ups read archived months from the files; `restore` puts a month back after checking it, and refuses
a file or manifest someone altered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backend.db.repo import archive as archive_repo
from backend.db.repo import exports
from backend.domain.keyring import new_key_line, parse_keyring
from backend.services import archive, archive_files, record_keys

HOT = 24
LOGGERS = ("LGR-ARC1", "LGR-ARC2")
# The fixture makes every month's partition from 41 months back; with 24 hot months, those from 41 to
# 25 months back are due (the month 25 back ended exactly 24 months before the current one began).
DUE = range(41, 24, -1)


def months_back(months: int, day: int = 10) -> datetime:
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 - months
    return datetime(index // 12, index % 12 + 1, day, 6, tzinfo=UTC)


def keyring() -> Any:
    return record_keys.current()


async def _readings(conn: asyncpg.Connection[Any]) -> list[tuple[Any, ...]]:
    rows = await conn.fetch("SELECT * FROM readings WHERE logger_id LIKE 'LGR-ARC%' ORDER BY logger_id, ts")
    return [tuple(r) for r in rows]


async def _partitions(conn: asyncpg.Connection[Any]) -> set[str]:
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'readings'::regclass"""
    )
    return {r["relname"] for r in rows}


@pytest.fixture
async def conn(database_url: str) -> Any:
    """The schema owner's connection (archiving detaches partitions) with readings in three old months
    (40 and 30 months ago: due with 24 hot months; 5 months ago: not) and the current one."""
    connection = await asyncpg.connect(database_url)
    await connection.execute("INSERT INTO loggers (id, model) VALUES ('LGR-ARC1', 't'), ('LGR-ARC2', 't')")
    await connection.execute("SELECT ensure_readings_partitions(2, $1)", months_back(41))
    rows = []
    for months in (40, 30, 5, 0):
        start = months_back(months, day=1 if months == 0 else 10)
        for logger in LOGGERS:
            for i in range(30):
                # Temperatures with more digits than a real keeps, nulls in the optional columns.
                rows.append(
                    (
                        logger,
                        start + timedelta(minutes=5 * i),
                        -150.0 - i * 1.234567 if logger == "LGR-ARC1" else 4.37 + i / 7,
                        None if i % 4 == 0 else 80 - i,
                        None if i % 3 == 0 else i % 2 == 0,
                        None if i % 5 == 0 else f"SHP-{months}",
                        start + timedelta(minutes=5 * i, seconds=3, microseconds=123457),
                        start + timedelta(minutes=5 * i, seconds=4),
                    )
                )
    await connection.copy_records_to_table("readings", records=rows, columns=list(archive_files.COLUMNS))
    try:
        yield connection
    finally:
        await connection.close()


async def _logger_rows(conn: asyncpg.Connection[Any]) -> list[Any]:
    found = []
    for logger in LOGGERS:
        found += await exports.readings_of_logger(conn, logger, None, None, 100_000)
    return found


async def test_due_months_are_archived_verified_and_restored_whole(conn, tmp_path):
    before = await _readings(conn)
    seen_before = await _logger_rows(conn)
    assert await archive.due(conn, 0) == []  # 0: retention off
    due = await archive.due(conn, HOT)
    assert [archive.month_label(d.range_from) for d in due] == [
        archive.month_label(months_back(m)) for m in DUE
    ]
    assert [d.rows for d in due] == [60 if m in (40, 30) else 0 for m in DUE]

    done = await archive.archive_due(conn, keyring(), tmp_path, HOT)
    assert [d.rows for d in done] == [d.rows for d in due]
    names = {archive_repo.partition_name(d.range_from) for d in due}
    assert not names & await _partitions(conn)
    assert archive_repo.partition_name(months_back(5)) in await _partitions(conn)
    for item in done:
        _check_files(item)
    # Only the months not archived are left in the database...
    left = await conn.fetchval("SELECT count(*) FROM readings WHERE logger_id LIKE 'LGR-ARC%'")
    assert left == 120
    # ...yet the look-ups the reports use read the archived ones, value for value.
    assert await _logger_rows(conn) == seen_before
    assert await archive.due(conn, HOT) == []

    # Restored: the same rows, every column, in partitions that are append-only again.
    for item in done:
        restored = await archive.restore(conn, keyring(), archive.month_label(item.range_from))
        assert restored.rows == item.rows
    assert await _readings(conn) == before
    assert names <= await _partitions(conn)
    assert await conn.fetchval("SELECT count(*) FROM archived_readings WHERE restored_at IS NULL") == 0
    with pytest.raises(asyncpg.PostgresError, match="not allowed"):
        await conn.execute(f"DELETE FROM {archive_repo.partition_name(months_back(40))}")
    with pytest.raises(archive.ArchiveError, match="already in the database"):
        await archive.restore(conn, keyring(), _of(done, 40).file)
    # Archived again after a restore: a new file beside the first, which is left as it was.
    again = await archive.archive_due(conn, keyring(), tmp_path, HOT)
    assert {a.file for a in again}.isdisjoint({d.file for d in done})
    assert all(_exists(d.file) for d in done)


def _check_files(item: archive.Archived) -> None:
    path = Path(item.file)
    assert path.stat().st_mode & 0o777 == 0o600
    assert archive_files.sha256_of(path) == item.sha256
    manifest = archive_files.read_manifest(Path(item.manifest))
    assert archive_files.authenticity(manifest, keyring()) == "authentic"
    assert manifest.body.rows == item.rows
    assert manifest.body.logger_ids == ([] if item.rows == 0 else list(LOGGERS))
    if item.rows:
        assert pq.read_metadata(path).row_group(0).column(0).compression == "ZSTD"


def _exists(path: str) -> bool:
    return Path(path).exists()


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


async def test_a_reading_that_arrives_after_its_month_was_archived_is_kept_and_joins_on_restore(
    conn, tmp_path
):
    await archive.archive_due(conn, keyring(), tmp_path, HOT)
    late = months_back(40) + timedelta(days=3)
    await conn.execute(
        "INSERT INTO readings (logger_id, ts, temp_c) VALUES ('LGR-ARC1', $1, -170), ('LGR-ARC1', $2, 0)",
        late,
        months_back(40),  # the same key as an archived reading: the archived one wins
    )
    assert await conn.fetchval("SELECT count(*) FROM readings_default") == 2
    rows = await exports.readings_of_logger(conn, "LGR-ARC1", months_back(41), months_back(39), 1000)
    assert len(rows) == 31
    assert [r.temp_c for r in rows if r.ts == months_back(40)] == [-150.0]
    restored = await archive.restore(conn, keyring(), archive.month_label(months_back(40)))
    assert (restored.rows, restored.joined_from_default) == (60, 1)
    assert await conn.fetchval("SELECT count(*) FROM readings_default") == 0
    assert await exports.readings_of_logger(conn, "LGR-ARC1", months_back(41), months_back(39), 1000) == rows


def _of(done: list[archive.Archived], months: int) -> archive.Archived:
    return next(d for d in done if d.range_from == archive_repo.month_start(*_ym(months_back(months))))


def _ym(at: datetime) -> tuple[int, int]:
    return at.year, at.month


async def test_a_tampered_file_is_refused_by_restore_and_by_the_reports(conn, tmp_path):
    done = await archive.archive_due(conn, keyring(), tmp_path, HOT)
    target = _of(done, 40)
    path = Path(target.file)
    _flip_a_byte(path)
    with pytest.raises(archive.ArchiveError, match="altered"):
        await archive.restore(conn, keyring(), archive.month_label(target.range_from))
    with pytest.raises(archive.ArchiveError, match="altered"):
        await archive.restore(conn, keyring(), str(path))
    # A report never shows a leg without the readings it had: it fails, and says why.
    with pytest.raises(archive.ArchiveError, match="altered"):
        await exports.readings_of_logger(conn, "LGR-ARC1", None, None, 1000)
    assert archive_repo.partition_name(target.range_from) not in await _partitions(conn)


def _edit_manifest(path: Path, **changes: Any) -> None:
    edited = json.loads(path.read_bytes())
    edited["body"].update(changes)
    path.write_text(json.dumps(edited))


def _forge_file(path: Path, work: Path) -> None:
    """The attacker's own file (one reading changed) in place of the archived one."""
    table = pq.read_table(path)
    temps = table.column("temp_c").to_pylist()
    temps[0] = 5.0
    forged = table.set_column(2, "temp_c", pa.array(temps, type=pa.float32()))
    pq.write_table(forged, work / "forged.parquet")
    path.write_bytes((work / "forged.parquet").read_bytes())


def _resign_with_a_foreign_key(manifest_path: Path) -> None:
    foreign = parse_keyring(new_key_line())
    assert foreign.current is not None
    body = msgspec.structs.replace(
        archive_files.read_manifest(manifest_path).body, key_id=foreign.current.key_id
    )
    manifest_path.write_bytes(archive_files.encode_manifest(archive_files.sign(foreign.current, body)))


def _copy(source: str, target: Path) -> None:
    target.write_bytes(Path(source).read_bytes())


async def test_an_attacker_editing_the_manifest_or_forging_a_file_is_refused(conn, tmp_path):
    done = await archive.archive_due(conn, keyring(), tmp_path, HOT)
    target = _of(done, 40)
    month = archive.month_label(target.range_from)
    path, manifest_path = Path(target.file), Path(target.manifest)

    # The manifest edited in place (fewer rows claimed), its signature kept.
    _edit_manifest(manifest_path, rows=59)
    with pytest.raises(archive.ArchiveError, match="not authentic"):
        await archive.restore(conn, keyring(), month)

    # A file of the attacker's own, with its SHA-256 and size put into the manifest.
    _forge_file(path, tmp_path)
    _edit_manifest(manifest_path, rows=60, sha256=archive_files.sha256_of(path), bytes=_size(path))
    with pytest.raises(archive.ArchiveError, match="not authentic"):
        await archive.restore(conn, keyring(), month)
    with pytest.raises(archive.ArchiveError, match="not authentic"):
        await exports.readings_of_logger(conn, "LGR-ARC1", None, None, 1000)

    # ... and re-signed with a key of the attacker's own: not a key of this record.
    _resign_with_a_foreign_key(manifest_path)
    with pytest.raises(archive.ArchiveError, match="cannot be verified"):
        await archive.restore(conn, keyring(), month)

    # Another month's genuine manifest put beside this file.
    _copy(_of(done, 30).manifest, manifest_path)
    with pytest.raises(archive.ArchiveError, match="is that of"):
        await archive.restore(conn, keyring(), month)
    assert archive_repo.partition_name(target.range_from) not in await _partitions(conn)
    in_force = await conn.fetchval("SELECT count(*) FROM archived_readings WHERE restored_at IS NULL")
    assert in_force == len(DUE)


def _size(path: Path) -> int:
    return path.stat().st_size


async def test_a_failure_while_archiving_leaves_the_month_in_the_database(conn, tmp_path, monkeypatch):
    before = await _readings(conn)
    parts = await _partitions(conn)
    # The archive directory cannot be created: nothing archived, nothing dropped.
    blocker = tmp_path / "not-a-directory"
    _copy(__file__, blocker)
    with pytest.raises(NotADirectoryError):
        await archive.archive_due(conn, keyring(), blocker / "archive", HOT)

    # The file does not read back as it was written (a disk returning other bytes): refused before drop.
    real = archive_files.sha256_of
    calls = {"n": 0}

    def flaky(path: Path) -> str:
        calls["n"] += 1
        return real(path) if calls["n"] == 1 else "0" * 64

    monkeypatch.setattr(archive_files, "sha256_of", flaky)
    with pytest.raises(archive_files.ArchiveFileError, match="does not read back"):
        await archive.archive_due(conn, keyring(), tmp_path / "archive", HOT)
    monkeypatch.undo()
    assert await _readings(conn) == before
    assert await _partitions(conn) == parts
    assert await conn.fetchval("SELECT count(*) FROM archived_readings") == 0
    assert not [p for p in (tmp_path / "archive").iterdir() if p.stat().st_size]


CRASH = """
import asyncio, os, sys
import asyncpg
from backend.services import archive, archive_files, record_keys
from backend.settings import load_settings

real = archive_files.write_once
def crash(path, data):
    real(path, data)
    os._exit(9)  # killed after the file and its manifest are on disk, before the commit
archive_files.write_once = crash

async def main():
    conn = await asyncpg.connect(sys.argv[1])
    keys = record_keys.load(load_settings({}, record_key_file=sys.argv[3]))
    await archive.archive_due(conn, keys, archive_files.Path(sys.argv[2]), 24)

asyncio.run(main())
"""


def _crash(database_url: str, directory: Path, key_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CRASH, database_url, str(directory), str(key_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
    )


async def test_a_crash_mid_way_loses_nothing(conn, database_url, tmp_path, record_key_file):
    before = await _readings(conn)
    parts = await _partitions(conn)
    done = _crash(database_url, tmp_path, record_key_file)
    assert done.returncode == 9, done.stderr
    assert any(tmp_path.iterdir())  # it got as far as writing
    assert await _readings(conn) == before
    assert await _partitions(conn) == parts
    assert await conn.fetchval("SELECT count(*) FROM archived_readings") == 0
    # The next run archives the month normally.
    assert len(await archive.archive_due(conn, keyring(), tmp_path, HOT)) == len(DUE)


async def test_the_application_role_cannot_write_archive_rows(conn, app_database_url, tmp_path):
    await archive.archive_due(conn, keyring(), tmp_path, HOT)
    app = await asyncpg.connect(app_database_url)
    try:
        assert await app.fetchval("SELECT count(*) FROM archived_readings") == len(DUE)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("UPDATE archived_readings SET restored_at = now()")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute(
                """INSERT INTO archived_readings (range_from, range_until, file_path, manifest_path,
                                                  sha256, row_count)
                   VALUES (now(), now() + interval '1 day', '/x', '/x.manifest.json', $1, 0)""",
                "0" * 64,
            )
        # The application itself reads archived months through the look-ups.
        rows = await exports.readings_of_logger(app, "LGR-ARC1", None, None, 1000)
        assert len(rows) == 120
    finally:
        await app.close()


def _cli(
    *args: str, database_url: str, key_file: Path, archive_dir: Path
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CELLTRAIL_DATABASE_URL": database_url,
        "CELLTRAIL_RECORD_KEY_FILE": str(key_file),
        "CELLTRAIL_READINGS_HOT_MONTHS": str(HOT),
        "CELLTRAIL_READINGS_ARCHIVE_DIR": str(archive_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_the_commands_archive_list_and_restore(conn, database_url, record_key_file, tmp_path):
    before = await _readings(conn)
    listed = _cli(
        "archive", "--dry-run", database_url=database_url, key_file=record_key_file, archive_dir=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    assert f"due: {archive.month_label(months_back(40))}" in listed.stdout
    assert f"{len(DUE)} months due" in listed.stdout
    assert not any(tmp_path.iterdir())

    done = _cli("archive", database_url=database_url, key_file=record_key_file, archive_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{len(DUE)} months archived" in done.stdout
    month = archive.month_label(months_back(30))
    [file] = tmp_path.glob(f"readings-{month}-*.parquet")
    _flip_a_byte(file)
    refused = _cli(
        "restore-archive", month, database_url=database_url, key_file=record_key_file, archive_dir=tmp_path
    )
    assert refused.returncode == 1
    assert "refused" in refused.stderr
    assert "altered" in refused.stderr

    month = archive.month_label(months_back(40))
    restored = _cli(
        "restore-archive", month, database_url=database_url, key_file=record_key_file, archive_dir=tmp_path
    )
    assert restored.returncode == 0, restored.stderr
    assert f"restored {month}" in restored.stdout
    rows = await _readings(conn)
    assert [r for r in before if r[1] >= months_back(41) and r[1] < months_back(39)] == [
        r for r in rows if r[1] < months_back(39)
    ]
