"""Bytes per stored reading before and after migration 0041 (readings partitioned by month, the
`(shipment_id, ts)` index dropped), on generated readings.

Two scratch databases on the server given (a superuser's URL), one migrated through 0040 and one through
0041, each filled with the same generated readings by one `INSERT ... SELECT`; the size is
`pg_total_relation_size` of the table, summed over its partitions. Both databases are dropped after.

    python -m bench.readings_bytes postgresql://postgres:...@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json

import asyncpg

from backend.db.migrate import bundled_migrations, migrate

LOGGERS = 200
PER_LOGGER = 5000


async def measure(server_url: str, name: str, through: int) -> dict[str, float]:
    base = server_url.rpartition("/")[0]
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(f"{base}/{name}")
        try:
            await migrate(conn, [m for m in bundled_migrations() if m.version <= through])
            await conn.execute(
                "INSERT INTO loggers (id, model) SELECT 'LGR-M' || g, 'm' FROM generate_series(1, $1::int) g",
                LOGGERS,
            )
            await conn.execute(
                """INSERT INTO readings
                       (logger_id, ts, temp_c, battery_pct, lid_open, shipment_id, received_at)
                   SELECT 'LGR-M' || l, timestamptz '2026-10-01' + n * interval '15 minutes', -160 + random(),
                          80, false, 'SHP-2026-' || lpad(l::text, 6, '0'),
                          timestamptz '2026-10-01' + n * interval '15 minutes'
                   FROM generate_series(1, $1::int) l, generate_series(1, $2::int) n""",
                LOGGERS,
                PER_LOGGER,
            )
            await conn.execute("VACUUM ANALYZE readings")
            row = await conn.fetchrow(
                """SELECT coalesce(sum(pg_total_relation_size(relid)),
                                   pg_total_relation_size('readings')) AS total,
                          coalesce(sum(pg_relation_size(relid)), pg_relation_size('readings')) AS heap,
                          (SELECT count(*) FROM readings) AS n
                   FROM pg_partition_tree('readings')"""
            )
            assert row is not None
        finally:
            await conn.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    n = int(row["n"])
    return {
        "readings": n,
        "bytes_per_reading": round(int(row["total"]) / n, 1),
        "heap_per_reading": round(int(row["heap"]) / n, 1),
        "index_per_reading": round((int(row["total"]) - int(row["heap"])) / n, 1),
    }


async def main(server_url: str) -> None:
    before = await measure(server_url, "celltrail_bytes_before", 40)
    after = await measure(server_url, "celltrail_bytes_after", 41)
    print(json.dumps({"before_0041": before, "after_0041": after}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server_url", help="a superuser's URL (scratch databases are made beside it)")
    asyncio.run(main(parser.parse_args().server_url))
