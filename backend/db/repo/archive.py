"""SQL of the readings archive (backend/services/archive.py): which month partitions exist, reading one
whole, detaching and dropping it once its file is verified, re-attaching a restored month, and the
`archived_readings` rows (migration 0043) through which the reports find an archived month's file.

Partition names are made here from a month (never taken from input), and quoted as identifiers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn

_MONTH_NAME = re.compile(r"^readings_y(\d{4})m(\d{2})$")
# Taking the partition and the parent for the final detach waits at most this long behind others.
LOCK_TIMEOUT = "5s"


class ArchivedMonth(msgspec.Struct, frozen=True):
    id: int
    range_from: datetime
    range_until: datetime
    file_path: str
    manifest_path: str
    sha256: str
    row_count: int
    archived_at: datetime


def month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return month_start(start.year + start.month // 12, start.month % 12 + 1)


def partition_name(start: datetime) -> str:
    return f"readings_y{start.year:04d}m{start.month:02d}"


def _ident(name: str) -> str:
    assert _MONTH_NAME.match(name) or name == "readings_default"  # made here, never from input
    return '"' + name + '"'


async def month_partitions(conn: Conn) -> list[datetime]:
    """The start of every month that has its partition attached, oldest first."""
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'readings'::regclass"""
    )
    found = []
    for row in rows:
        match = _MONTH_NAME.match(row["relname"])
        if match:
            found.append(month_start(int(match.group(1)), int(match.group(2))))
    return sorted(found)


async def current_month(conn: Conn) -> datetime:
    value: datetime = await conn.fetchval("SELECT date_trunc('month', now(), 'UTC')")
    return value.astimezone(UTC)


async def lock_month(conn: Conn, start: datetime) -> None:
    """Hold off any late reading of this month, and a second archiver of it, while its file is written
    (readers are not blocked; the second archiver gives up after the lock timeout)."""
    await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    await conn.execute(f"LOCK TABLE {_ident(partition_name(start))} IN SHARE ROW EXCLUSIVE MODE")


async def count_month(conn: Conn, start: datetime) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {_ident(partition_name(start))}"))  # noqa: S608


async def rows_of_month(conn: Conn, start: datetime, batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The month's rows in key order, `batch` at a time (a cursor: must run inside a transaction; closed
    before the caller goes on, since a partition with an open cursor on it cannot be dropped)."""
    await conn.execute(
        "DECLARE archive_month NO SCROLL CURSOR FOR "  # noqa: S608 - the name is made here
        "SELECT logger_id, ts, temp_c, battery_pct, lid_open, shipment_id, received_at, stored_at "
        f"FROM {_ident(partition_name(start))} ORDER BY logger_id, ts"
    )
    try:
        while rows := await conn.fetch(f"FETCH {int(batch)} FROM archive_month"):
            yield [tuple(r) for r in rows]
    finally:
        await conn.execute("CLOSE archive_month")


async def record_archived(
    conn: Conn, start: datetime, file_path: str, manifest_path: str, sha256: str, rows: int
) -> None:
    await conn.execute(
        """INSERT INTO archived_readings (range_from, range_until, file_path, manifest_path, sha256, row_count)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        start,
        next_month(start),
        file_path,
        manifest_path,
        sha256,
        rows,
    )


async def drop_month(conn: Conn, start: datetime) -> None:
    """Detach and drop the month's partition (inside the transaction that recorded its archive)."""
    name = _ident(partition_name(start))
    await conn.execute(f"ALTER TABLE readings DETACH PARTITION {name}")
    await conn.execute(f"DROP TABLE {name}")


async def archived(conn: Conn) -> list[ArchivedMonth]:
    rows = await conn.fetch(
        """SELECT id, range_from, range_until, file_path, manifest_path, sha256, row_count, archived_at
           FROM archived_readings WHERE restored_at IS NULL ORDER BY range_from"""
    )
    return [ArchivedMonth(**r) for r in rows]


async def archived_month(conn: Conn, start: datetime) -> ArchivedMonth | None:
    row = await conn.fetchrow(
        """SELECT id, range_from, range_until, file_path, manifest_path, sha256, row_count, archived_at
           FROM archived_readings WHERE restored_at IS NULL AND range_from = $1""",
        start,
    )
    return ArchivedMonth(**row) if row else None


async def archived_overlapping(conn: Conn, since: datetime, until: datetime | None) -> list[ArchivedMonth]:
    rows = await conn.fetch(
        """SELECT id, range_from, range_until, file_path, manifest_path, sha256, row_count, archived_at
           FROM archived_readings
           WHERE restored_at IS NULL AND range_until > $1 AND ($2::timestamptz IS NULL OR range_from < $2)
           ORDER BY range_from""",
        since,
        until,
    )
    return [ArchivedMonth(**r) for r in rows]


async def archived_of_leg(
    conn: Conn, shipment_id: str, since: datetime | None, until: datetime | None
) -> tuple[str, datetime, datetime | None, list[ArchivedMonth]]:
    """(logger, from, until) of the leg's window (migration 0023) narrowed to [since, until), and the
    archived months that overlap it; no row at all (one small query) when none does."""
    rows = await conn.fetch(
        """SELECT s.logger_id, greatest(s.leg_from, $2) AS lower,
                  CASE WHEN s.leg_until IS NULL THEN $3 WHEN $3::timestamptz IS NULL THEN s.leg_until
                       ELSE least(s.leg_until, $3) END AS upper,
                  a.id, a.range_from, a.range_until, a.file_path, a.manifest_path, a.sha256, a.row_count,
                  a.archived_at
           FROM shipments s
           JOIN archived_readings a ON a.restored_at IS NULL AND a.range_until > greatest(s.leg_from, $2)
                AND (s.leg_until IS NULL OR a.range_from < s.leg_until)
                AND ($3::timestamptz IS NULL OR a.range_from < $3)
           WHERE s.id = $1 AND s.leg_from IS NOT NULL
           ORDER BY a.range_from""",
        shipment_id,
        since,
        until,
    )
    if not rows:
        return "", datetime.min.replace(tzinfo=UTC), None, []
    first = rows[0]
    months = [ArchivedMonth(**{k: r[k] for k in ArchivedMonth.__struct_fields__}) for r in rows]
    return first["logger_id"], first["lower"], first["upper"], months


async def create_month_table(conn: Conn, start: datetime) -> str:
    """A table for the month, shaped like a partition, not yet attached (rows copied into it fire no
    trigger of the parent: a restored month marks no leg for re-evaluation)."""
    name = partition_name(start)
    await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    await conn.execute(f"CREATE TABLE {_ident(name)} (LIKE readings INCLUDING DEFAULTS)")
    await conn.execute(f"ALTER TABLE {_ident(name)} ADD PRIMARY KEY (logger_id, ts)")
    return name


async def attach_month(conn: Conn, start: datetime) -> int:
    """Attach the month's table; readings of the month that arrived meanwhile (kept in the default
    partition) join it, the archived row winning on the same key. Returns how many joined."""
    name = _ident(partition_name(start))
    until = next_month(start)
    moved = 0
    held = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM readings_default WHERE ts >= $1 AND ts < $2)", start, until
    )
    if held:
        # As ensure_readings_partitions (migration 0041) does: the default partition is remade without
        # the month's rows, which are moved, since it is append-only and PostgreSQL will not attach a
        # range the default partition holds rows of.
        status = await conn.execute(
            f"""INSERT INTO {name} SELECT * FROM readings_default WHERE ts >= $1 AND ts < $2
                ON CONFLICT DO NOTHING""",  # noqa: S608
            start,
            until,
        )
        moved = int(status.split()[-1])
        await conn.execute("ALTER TABLE readings DETACH PARTITION readings_default")
        await conn.execute("ALTER TABLE readings_default RENAME TO readings_default_moving")
        await conn.execute("CREATE TABLE readings_default PARTITION OF readings DEFAULT")
        await conn.execute(
            "INSERT INTO readings_default SELECT * FROM readings_default_moving WHERE NOT (ts >= $1 AND ts < $2)",
            start,
            until,
        )
        await conn.execute("DROP TABLE readings_default_moving")
    await conn.execute(
        f"ALTER TABLE readings ATTACH PARTITION {name} FOR VALUES FROM ('{start.isoformat()}') TO ('{until.isoformat()}')"
    )
    return moved


async def mark_restored(conn: Conn, archive_id: int) -> None:
    await conn.execute("UPDATE archived_readings SET restored_at = now() WHERE id = $1", archive_id)
