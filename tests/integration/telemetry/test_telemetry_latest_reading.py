"""A logger's latest reading (`readings.latest`) asks the newest months first and stops at the first that
holds one of its readings: a logger that reported this month costs the same with a year of monthly
partitions as with one (migration 0061). Partitions read, as PostgreSQL counts them; never a timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from backend.db.repo import readings

MONTHS = 14

# Per leaf partition of readings: the scans (sequential and index) this transaction made on it.
SCANS = """SELECT c.relname,
                  pg_stat_get_xact_numscans(c.oid)
                  + coalesce((SELECT sum(pg_stat_get_xact_numscans(x.indexrelid))
                                FROM pg_index x WHERE x.indrelid = c.oid), 0) AS scans
             FROM pg_partition_tree('readings') t JOIN pg_class c ON c.oid = t.relid
            WHERE t.isleaf"""


@pytest.fixture
async def conn(database_url: str) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO sites (code, name, kind, time_zone) VALUES ('LR-A', 'Latest', 'hospital', 'UTC');
               INSERT INTO loggers (id, model, owner_site)
               SELECT 'LGR-L' || g, 'latest', 'LR-A' FROM generate_series(1, 4) g;"""
        )
        await conn.execute(
            "SELECT ensure_readings_partitions(1, $1)", datetime.now(UTC) - timedelta(days=31 * (MONTHS - 2))
        )
        yield conn
    finally:
        await conn.close()


async def _add(conn: asyncpg.Connection[Any], logger: str, *times: datetime) -> None:
    await conn.executemany(
        "INSERT INTO readings (logger_id, ts, temp_c, received_at) VALUES ($1, $2, -160, now())",
        [(logger, ts) for ts in times],
    )


async def _partitions_read(conn: asyncpg.Connection[Any], logger: str) -> tuple[Any, list[str]]:
    async with conn.transaction():
        before = {r["relname"]: r["scans"] for r in await conn.fetch(SCANS)}
        latest = await readings.latest(conn, logger)
        after = {r["relname"]: r["scans"] for r in await conn.fetch(SCANS)}
    return latest, sorted(name for name, n in after.items() if n > before.get(name, 0))


async def test_the_latest_reading_asks_the_newest_months_first(conn: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    year_ago = now - timedelta(days=31 * (MONTHS - 3))
    await _add(conn, "LGR-L1", year_ago, now - timedelta(hours=2), now - timedelta(hours=1))
    await _add(conn, "LGR-L2", year_ago, year_ago + timedelta(minutes=5))
    # Beyond the months kept ready: in the default partition.
    await _add(conn, "LGR-L3", now - timedelta(hours=1), now + timedelta(days=3 * 365))
    await conn.execute("ANALYZE readings")
    leaves = await conn.fetchval("SELECT count(*) FROM pg_partition_tree('readings') WHERE isleaf")
    assert leaves >= MONTHS

    latest, read = await _partitions_read(conn, "LGR-L1")
    assert latest is not None
    assert latest.ts == now - timedelta(hours=1)
    # The default partition, the months kept ready ahead (empty) and this month: not the year behind.
    this_month = now.strftime("readings_y%Ym%m")
    assert all(name == "readings_default" or name >= this_month for name in read), read
    assert this_month in read

    # An old reading is still found, by walking back to its month.
    latest, _ = await _partitions_read(conn, "LGR-L2")
    assert latest is not None
    assert latest.ts == year_ago + timedelta(minutes=5)
    # A reading outside the monthly ranges is newer than this month's, and the walk stops there.
    latest, read = await _partitions_read(conn, "LGR-L3")
    assert latest is not None
    assert latest.ts == now + timedelta(days=3 * 365)
    assert len(read) <= 1, read
    # No reading at all: none.
    latest, _ = await _partitions_read(conn, "LGR-L4")
    assert latest is None
