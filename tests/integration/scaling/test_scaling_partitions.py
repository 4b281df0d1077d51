"""Readings partitioned by month (migration 0041): each reading lands in its month's partition, one with
no partition yet in the default partition (never refused), and the backend's housekeeping makes the
coming months' partitions ahead, once, moving what the default partition held of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from backend.db.migrate import bundled_migrations, migrate
from backend.db.pool import create_pool
from backend.db.repo import readings
from backend.services import housekeeping
from backend.services.monitoring import run_periodic_checks


def _month_name(at: datetime) -> str:
    return f"readings_y{at.year:04d}m{at.month:02d}"


def _months_after(at: datetime, months: int) -> datetime:
    index = at.year * 12 + at.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 15, 12, tzinfo=UTC)


async def _partitions(conn: asyncpg.Connection[Any]) -> list[str]:
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'readings'::regclass ORDER BY c.relname"""
    )
    return [r["relname"] for r in rows]


async def _where(conn: asyncpg.Connection[Any], logger: str) -> list[tuple[datetime, str]]:
    rows = await conn.fetch(
        "SELECT ts, tableoid::regclass::text AS part FROM readings WHERE logger_id = $1 ORDER BY ts", logger
    )
    return [(r["ts"], r["part"]) for r in rows]


@pytest.fixture
async def conn(database_url: str) -> Any:
    connection = await asyncpg.connect(database_url)
    await connection.execute("INSERT INTO loggers (id, model) VALUES ('LGR-PART1', 'test')")
    try:
        yield connection
    finally:
        await connection.close()


async def _store(conn: asyncpg.Connection[Any], times: list[datetime]) -> readings.BatchInsert:
    columns = readings.ReadingColumns(
        logger_id=["LGR-PART1"] * len(times),
        ts=times,
        temp_c=[-160.0] * len(times),
        battery_pct=[80] * len(times),
        lid_open=[False] * len(times),
        received_at=[datetime.now(UTC)] * len(times),
    )
    return await readings.insert_batch(conn, columns, f"batch-{times[0].isoformat()}", "bridge-1")


async def test_a_reading_lands_in_its_months_partition_and_an_unprepared_month_in_the_default(conn):
    now = datetime.now(UTC)
    later = _months_after(now, 7)
    stored = await _store(conn, [now, later])
    assert stored.stored == 2
    assert await _where(conn, "LGR-PART1") == [(now, _month_name(now)), (later, "readings_default")]
    # The key still refuses a second reading at the same time, whichever partition holds it.
    again = await _store(conn, [now, later])
    assert (again.stored, again.known) == (0, 2)
    with pytest.raises(asyncpg.PostgresError, match="not allowed"):
        await conn.execute("UPDATE readings SET temp_c = 0 WHERE logger_id = 'LGR-PART1'")
    with pytest.raises(asyncpg.PostgresError, match="not allowed"):
        await conn.execute(f"DELETE FROM {_month_name(now)} WHERE logger_id = 'LGR-PART1'")


async def test_housekeeping_makes_the_coming_months_once_and_moves_what_the_default_held(
    conn, app_database_url
):
    now = datetime.now(UTC)
    later = _months_after(now, 7)
    await _store(conn, [now, later])
    marks = await conn.fetchval("SELECT count(*) FROM excursion_dirty")
    pool = await create_pool(app_database_url, min_size=1, max_size=2)
    try:
        # As the application role, which creates no tables itself.
        created = await housekeeping.ensure_readings_partitions(pool, months_ahead=8)
        again = await housekeeping.ensure_readings_partitions(pool, months_ahead=8)
    finally:
        await pool.close()
    partitions = await _partitions(conn)
    assert {_month_name(_months_after(now, m)) for m in range(9)} <= set(partitions)
    assert created >= 6
    assert again == 0
    assert len(partitions) == len(set(partitions))
    # The reading the default partition held is now in its month's partition, once; nothing re-marked.
    assert await _where(conn, "LGR-PART1") == [(now, _month_name(now)), (later, _month_name(later))]
    assert await conn.fetchval("SELECT count(*) FROM readings_default") == 0
    assert await conn.fetchval("SELECT count(*) FROM excursion_dirty") == marks
    # The application role still reads and writes through the parent, and only there.
    app = await asyncpg.connect(app_database_url)
    try:
        assert await app.fetchval("SELECT count(*) FROM readings WHERE logger_id = 'LGR-PART1'") == 2
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("TRUNCATE readings")
        with pytest.raises(asyncpg.PostgresError):
            await app.execute(
                "CREATE TABLE readings_y2999m01 PARTITION OF readings "
                "FOR VALUES FROM ('2999-01-01') TO ('2999-02-01')"
            )
    finally:
        await app.close()


async def test_the_housekeeping_tick_makes_a_missing_month(conn, app_database_url, settings):
    coming = _month_name(_months_after(datetime.now(UTC), 2))
    assert coming in await _partitions(conn)
    await conn.execute(f"DROP TABLE {coming}")
    pool = await create_pool(app_database_url, min_size=1, max_size=2)
    try:
        await run_periodic_checks(pool, settings)
    finally:
        await pool.close()
    assert coming in await _partitions(conn)


async def test_the_migration_moves_an_existing_table_into_partitions(postgres_url):
    name = "celltrail_partition_migration"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.rpartition("/")[0] + "/" + name
    conn = await asyncpg.connect(url)
    try:
        before = [m for m in bundled_migrations() if m.version < 41]
        await migrate(conn, before)
        assert await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'readings'") == "r"
        await conn.execute("INSERT INTO loggers (id, model) VALUES ('LGR-OLD1', 'test')")
        old = datetime(2024, 2, 29, 23, 59, tzinfo=UTC)
        await conn.execute(
            """INSERT INTO readings (logger_id, ts, temp_c, received_at)
               SELECT 'LGR-OLD1', $1::timestamptz + g * interval '1 minute', -150 - g, $1
               FROM generate_series(0, 2) g""",
            old,
        )
        await migrate(conn)
        assert await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname = 'readings'") == "p"
        assert [(r[0], r[1]) for r in await _where(conn, "LGR-OLD1")] == [
            (old, "readings_y2024m02"),
            (old + timedelta(minutes=1), "readings_y2024m03"),
            (old + timedelta(minutes=2), "readings_y2024m03"),
        ]
        assert await conn.fetchval("SELECT to_regclass('readings_unpartitioned')") is None
        now = datetime.now(UTC)
        assert _month_name(_months_after(now, 2)) in await _partitions(conn)
        # What was kept of the old table: the key, the append-only trigger, the readings' marks.
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("INSERT INTO readings (logger_id, ts, temp_c) VALUES ('LGR-OLD1', $1, 1)", old)
        with pytest.raises(asyncpg.PostgresError, match="not allowed"):
            await conn.execute("DELETE FROM readings")
        indexes = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'readings'")
        assert [r["indexname"] for r in indexes] == ["readings_pkey"]
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
