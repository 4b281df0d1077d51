"""Retention of readings (issue 26): month partitions whose month ended more than
CELLTRAIL_READINGS_HOT_MONTHS months ago are written to Parquet files with a signed manifest
(backend/services/archive_files.py), and dropped from the database only after their file was written,
fsynced, read back and its checksum verified, in the same transaction as the `archived_readings` row
that tells the reports where the month now is. Any failure before that commit leaves the partition
attached and nothing lost. `restore` puts an archived month back as a partition after checking its
manifest's signature and its file's checksum.

Archiving and restoring detach and attach partitions: they run as the schema's owner (`celltrail
archive`, `celltrail restore-archive`), never as the application role. The custody record (events,
signatures, cases, shipments) is never archived: only `readings` partitions are.

The reports, the record and the temperature summaries read an archived month through `leg_readings`
and `logger_readings` below, from its file, after checking its manifest with the record keyring."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from backend.db.repo import archive as repo
from backend.db.repo import events
from backend.db.types import Conn
from backend.domain.keyring import Keyring
from backend.services import archive_files as files
from backend.services import record_keys
from backend.services.archive_files import ArchiveFileError

log = logging.getLogger(__name__)

# Rows read from PostgreSQL, and copied back into it, per round trip.
BATCH = 50_000
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

Progress = Callable[[int], None]


class ArchiveError(RuntimeError):
    """Archiving or restoring refused or failed; the message says what to do. Nothing was lost."""


class Due(msgspec.Struct, frozen=True):
    range_from: datetime
    partition: str
    rows: int


class Archived(msgspec.Struct, frozen=True):
    range_from: datetime
    file: str
    manifest: str
    rows: int
    bytes: int
    sha256: str


class Restored(msgspec.Struct, frozen=True):
    range_from: datetime
    partition: str
    rows: int
    # Readings of the month that had arrived after it was archived (kept meanwhile in the default
    # partition), now in the month's partition.
    joined_from_default: int


def month_label(start: datetime) -> str:
    return f"{start.year:04d}-{start.month:02d}"


def _add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return repo.month_start(index // 12, index % 12 + 1)


async def due(conn: Conn, hot_months: int) -> list[Due]:
    """The attached month partitions whose month ended more than `hot_months` months ago (none when 0:
    retention off). The current month is never due, whatever `hot_months` says."""
    if hot_months <= 0:
        return []
    cutoff = _add_months(await repo.current_month(conn), -hot_months)
    months = [m for m in await repo.month_partitions(conn) if repo.next_month(m) <= cutoff]
    return [Due(m, repo.partition_name(m), await repo.count_month(conn, m)) for m in months]


def _file_name(start: datetime, now: datetime) -> str:
    # The time of archiving makes each file's name new: a month archived, restored and archived again
    # gets a second file beside the first, which is never overwritten.
    return f"readings-{month_label(start)}-archived-{now:%Y%m%dT%H%M%S%fZ}.parquet"


async def archive_month(
    conn: Conn, keyring: Keyring, directory: Path, start: datetime, progress: Progress | None = None
) -> Archived:
    """Write one month to its file and manifest, verify them, then drop the partition. `conn` is the
    schema owner's. On any failure the transaction rolls back (the partition stays) and the files this
    call made are removed."""
    key = keyring.current
    if key is None:
        raise ArchiveError("no record key: the archive manifest cannot be signed")
    now = datetime.now(UTC)
    # Absolute: the reports open the file by the path recorded in the database, from any directory.
    data_path = files.absolute(directory) / _file_name(start, now)
    meta_path = files.manifest_path(data_path)
    try:
        async with conn.transaction():
            await repo.lock_month(conn, start)
            record_id, _ceiling = await events.record_identity(conn)
            writer = await asyncio.to_thread(files.MonthWriter, data_path)
            try:
                async for batch in repo.rows_of_month(conn, start, BATCH):
                    await asyncio.to_thread(writer.write, batch)
                    if progress is not None:
                        progress(len(batch))
                written = await asyncio.to_thread(writer.finish)
            finally:
                writer.abort()
            body = files.ManifestBody(
                format=files.FORMAT,
                record_id=record_id,
                range_from=start,
                range_until=repo.next_month(start),
                file=data_path.name,
                sha256=written.sha256,
                bytes=written.bytes,
                rows=written.rows,
                first_ts=written.first_ts,
                last_ts=written.last_ts,
                logger_ids=written.logger_ids,
                created_at=now,
                key_id=key.key_id,
            )
            await asyncio.to_thread(files.write_once, meta_path, files.encode_manifest(files.sign(key, body)))
            # Checked as a restore or a report will check it, before anything is dropped.
            await asyncio.to_thread(files.checked, data_path, keyring, record_id, written.sha256)
            if written.rows != await repo.count_month(conn, start):
                raise ArchiveError(f"{month_label(start)}: the file does not hold every reading of it")
            await repo.record_archived(
                conn, start, str(data_path), str(meta_path), written.sha256, written.rows
            )
            await repo.drop_month(conn, start)
    except BaseException:
        data_path.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)
        raise
    log.info(
        "readings month archived",
        extra={"month": month_label(start), "rows": written.rows, "file": data_path.name},
    )
    return Archived(start, str(data_path), str(meta_path), written.rows, written.bytes, written.sha256)


async def archive_due(
    conn: Conn,
    keyring: Keyring,
    directory: Path,
    hot_months: int,
    progress: Callable[[Due], Progress | None] | None = None,
) -> list[Archived]:
    """Archive every month that is due, oldest first; stops at the first failure (what was archived
    before it stays archived, the failed month stays in the database)."""
    done = []
    for month in await due(conn, hot_months):
        done.append(
            await archive_month(
                conn, keyring, directory, month.range_from, progress(month) if progress else None
            )
        )
    return done


def parse_month(text: str) -> datetime | None:
    match = _MONTH.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        return None
    return repo.month_start(int(match.group(1)), int(match.group(2)))


async def restore(
    conn: Conn, keyring: Keyring, target: str, progress: Callable[[int], Progress | None] | None = None
) -> Restored:
    """Re-attach an archived month: `target` is a month (YYYY-MM, found through `archived_readings`) or
    an archive file (its manifest beside it). The manifest's signature, the record it belongs to and the
    file's checksum and rows are checked first; a file that fails any of it is refused, and nothing in
    the database changes."""
    record_id, _ceiling = await events.record_identity(conn)
    start = parse_month(target)
    if start is not None:
        entry = await repo.archived_month(conn, start)
        if entry is None:
            raise ArchiveError(f"{target}: no archived month of readings by that name in this database")
        data_path = Path(entry.file_path)
    else:
        data_path = files.absolute(target)
        entry = None
    try:
        manifest, data = await asyncio.to_thread(
            files.load_checked, data_path, keyring, record_id, entry.sha256 if entry else None
        )
        facts = await asyncio.to_thread(files.facts, data)
    except ArchiveFileError as exc:
        raise ArchiveError(f"refused: {exc}") from None
    body = manifest.body
    start = body.range_from.astimezone(UTC)
    if facts.rows != body.rows:
        raise ArchiveError(f"refused: {data_path.name} holds {facts.rows} rows, its manifest {body.rows}")
    if facts.earliest is not None and not (
        body.range_from <= facts.earliest and facts.latest is not None and facts.latest < body.range_until
    ):
        raise ArchiveError(f"refused: {data_path.name} holds readings outside {month_label(start)}")
    if start in await repo.month_partitions(conn):
        raise ArchiveError(f"{month_label(start)} is already in the database; nothing to restore")
    if entry is None:
        entry = await repo.archived_month(conn, start)
    step = progress(facts.rows) if progress else None
    batches = files.batches_of(data, BATCH)
    try:
        async with conn.transaction():
            name = await repo.create_month_table(conn, start)
            while batch := await asyncio.to_thread(files.next_batch, batches):
                await conn.copy_records_to_table(name, records=batch, columns=list(files.COLUMNS))
                if step is not None:
                    step(len(batch))
            joined = await repo.attach_month(conn, start)
            if entry is not None:
                await repo.mark_restored(conn, entry.id)
    except ArchiveFileError as exc:
        raise ArchiveError(f"refused: {exc}") from None
    log.info("readings month restored", extra={"month": month_label(start), "rows": facts.rows})
    return Restored(start, name, facts.rows, joined)


# -- reading an archived month (the record, its PDF, the summaries, the CSV exports) ------------------


class ArchivedReading(msgspec.Struct, frozen=True):
    logger_id: str
    ts: datetime
    # The real as stored (its float32 value); archive_files.as_numeric gives what `::numeric` reads.
    temp_c: float
    battery_pct: int | None
    lid_open: bool | None
    shipment_id: str | None
    received_at: datetime


def _read_months(
    months: list[repo.ArchivedMonth],
    keyring: Keyring,
    record_id: str,
    logger_id: str,
    since: datetime,
    until: datetime | None,
) -> list[ArchivedReading]:
    found: list[ArchivedReading] = []
    for month in months:
        path = Path(month.file_path)
        # Checked at every read: a report never shows readings from a file that is not the one archived.
        _manifest, data = files.load_checked(path, keyring, record_id, month.sha256)
        filters: list[tuple[str, str, Any]] = [("logger_id", "=", logger_id), ("ts", ">=", since)]
        if until is not None:
            filters.append(("ts", "<", until))
        table = files.read_table(data, filters)
        columns = {name: table.column(name).to_pylist() for name in files.COLUMNS}
        found.extend(
            ArchivedReading(
                logger_id,
                columns["ts"][i],
                columns["temp_c"][i],
                columns["battery_pct"][i],
                columns["lid_open"][i],
                columns["shipment_id"][i],
                columns["received_at"][i],
            )
            for i in range(table.num_rows)
        )
    found.sort(key=lambda r: r.ts)
    return found


async def _read(
    conn: Conn, months: list[repo.ArchivedMonth], logger_id: str, since: datetime, until: datetime | None
) -> list[ArchivedReading]:
    record_id, _ceiling = await events.record_identity(conn)
    try:
        return await asyncio.to_thread(
            _read_months, months, record_keys.current(), record_id, logger_id, since, until
        )
    except ArchiveFileError as exc:
        raise ArchiveError(f"archived readings cannot be used: {exc}") from None


async def logger_readings(
    conn: Conn, logger_id: str, since: datetime | None, until: datetime | None
) -> list[ArchivedReading]:
    """The logger's archived readings in [since, until), oldest first; none (one query) when no archived
    month overlaps. An archive that fails its checks raises ArchiveError rather than leave readings out
    of a record."""
    lower = since or datetime(1970, 1, 1, tzinfo=UTC)
    months = await repo.archived_overlapping(conn, lower, until)
    return await _read(conn, months, logger_id, lower, until) if months else []


async def leg_readings(
    conn: Conn, shipment_id: str, since: datetime | None = None, until: datetime | None = None
) -> list[ArchivedReading]:
    """The leg's archived readings (its logger's inside its window, as `leg_readings()` in SQL), within
    [since, until) when given, oldest first; none (one query) when no archived month overlaps."""
    logger_id, lower, upper, months = await repo.archived_of_leg(conn, shipment_id, since, until)
    return await _read(conn, months, logger_id, lower, upper) if months else []


def merged(stored: list[Any], archived: list[Any], limit: int | None = None) -> list[Any]:
    """Rows of the database and of the archive together, by time; a reading in both (one that came again
    after its month was archived) counts once, as archived."""
    if not archived:
        return stored
    seen = {r.ts for r in archived}
    rows = sorted([*archived, *(r for r in stored if r.ts not in seen)], key=lambda r: r.ts)
    return rows if limit is None else rows[:limit]
