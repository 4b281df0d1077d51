"""Bytes per reading in the readings archive (Parquet, backend/services/archive.py) against the same
month in PostgreSQL, and what that makes per logger-year: the sizing note of issue 26 (docs/scaling.md).

A scratch database on the server given (a superuser's URL; without one, a private PostgreSQL is started
in a temporary directory) is migrated and one month, 40 months back, filled by one `INSERT ... SELECT`:
LOGGERS loggers, one reading every INTERVAL_MINUTES minutes all month, each logger on a new two-day leg
every two days, received a few seconds after it was taken and stored a few milliseconds after that. Two
shapes of temperature: "logger" (a slow drift plus noise, to the 0.01 °C a logger reports) and "noise"
(every reading a different full-precision value: the worst case for compression). PostgreSQL's size is
`pg_total_relation_size` of the month's partition after `VACUUM ANALYZE` (heap, key index, TOAST, free
space and visibility maps); the archive's is the Parquet file `archive_month` writes (its manifest
beside it is a few hundred bytes plus the logger ids). The month is then restored from the file (and
both timed). The database is dropped after.

    python -m bench.archive_size [postgresql://postgres:...@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow.parquet as pq

from backend.db.migrate import migrate
from backend.db.repo import archive as archive_repo
from backend.domain.keyring import new_key_line, parse_keyring
from backend.services import archive

LOGGERS = 200
INTERVAL_MINUTES = 5
SECONDS_PER_YEAR = 365.25 * 24 * 3600

_TEMPERATURES = {
    # A drift of a few tenths over hours plus sensor noise, at 0.01 °C resolution.
    "logger": "round((4.5 + 1.5 * sin(n / 40.0 + l) + (random() - 0.5) * 0.2)::numeric, 2)::real",
    "noise": "(-160 + random() * 10)::real",
}


def _month_back(months: int) -> datetime:
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 - months
    return archive_repo.month_start(index // 12, index % 12 + 1)


async def measure(server_url: str, shape: str, directory: Path) -> dict[str, Any]:
    base = server_url.rpartition("/")[0]
    name = f"celltrail_archive_size_{shape}"
    start = _month_back(40)
    until = archive_repo.next_month(start)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(f"{base}/{name}")
        try:
            await migrate(conn)
            await conn.execute("SELECT ensure_readings_partitions(0, $1)", start)
            await conn.execute(
                "INSERT INTO loggers (id, model) SELECT 'LGR-' || lpad(g::text, 5, '0'), 'm' "
                "FROM generate_series(1, $1::int) g",
                LOGGERS,
            )
            per_logger = int((until - start).total_seconds() // (INTERVAL_MINUTES * 60))
            await conn.execute(
                f"""INSERT INTO readings
                       (logger_id, ts, temp_c, battery_pct, lid_open, shipment_id, received_at, stored_at)
                   SELECT 'LGR-' || lpad(l::text, 5, '0'), t, {_TEMPERATURES[shape]},
                          (95 - n / 1000)::smallint, n % 97 = 0,
                          'SHP-' || lpad((l * 1000 + n / (2 * 24 * 60 / $3))::text, 9, '0'),
                          t + (2 + random() * 8) * interval '1 second',
                          t + (2 + random() * 8) * interval '1 second' + random() * interval '50 milliseconds'
                   FROM generate_series(1, $1::int) l, generate_series(0, $2::int - 1) n,
                        LATERAL (SELECT $4::timestamptz + n * $3 * interval '1 minute' AS t) m""",
                LOGGERS,
                per_logger,
                INTERVAL_MINUTES,
                start,
            )
            await conn.execute("VACUUM ANALYZE readings")
            partition = archive_repo.partition_name(start)
            row = await conn.fetchrow(
                "SELECT count(*) AS n, pg_total_relation_size($1::regclass) AS total, "
                "pg_relation_size($1::regclass) AS heap FROM readings WHERE ts >= $2 AND ts < $3",
                partition,
                start,
                until,
            )
            assert row is not None
            keyring = parse_keyring(new_key_line())
            began = time.perf_counter()
            done = await archive.archive_month(conn, keyring, directory, start)
            archived_in = time.perf_counter() - began
            began = time.perf_counter()
            restored = await archive.restore(conn, keyring, done.file)
            restored_in = time.perf_counter() - began
            assert restored.rows == int(row["n"])
        finally:
            await conn.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    n = int(row["n"])
    manifest, columns = _file_facts(done)
    per_year = SECONDS_PER_YEAR / (INTERVAL_MINUTES * 60)
    parquet = done.bytes / n
    postgres = int(row["total"]) / n
    return {
        "readings": n,
        "postgres_bytes_per_reading": round(postgres, 1),
        "postgres_heap_per_reading": round(int(row["heap"]) / n, 1),
        "parquet_bytes_per_reading": round(parquet, 2),
        "manifest_bytes": manifest,
        "parquet_column_bytes_per_reading": {k: round(v / n, 2) for k, v in columns.items()},
        "ratio": round(postgres / parquet, 1),
        # Wall time on this machine, shared with others' work: an order of magnitude, not a target.
        "archive_seconds": round(archived_in, 1),
        "restore_seconds": round(restored_in, 1),
        "readings_per_logger_year": round(per_year),
        "parquet_bytes_per_logger_year": round(parquet * per_year),
        "postgres_bytes_per_logger_year": round(postgres * per_year),
    }


def _file_facts(done: archive.Archived) -> tuple[int, dict[str, int]]:
    """The manifest's size and the Parquet file's compressed bytes per column."""
    meta = pq.read_metadata(done.file)
    columns = dict.fromkeys(meta.schema.names, 0)
    for group in range(meta.num_row_groups):
        for index in range(meta.num_columns):
            chunk = meta.row_group(group).column(index)
            columns[chunk.path_in_schema] += chunk.total_compressed_size
    return Path(done.manifest).stat().st_size, columns


@contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from backend.embedded.postgres import EmbeddedPostgres

    directory = Path(tempfile.mkdtemp(prefix="celltrail-archive-size-"))
    cluster = EmbeddedPostgres(directory / "pgdata", fast_unsafe=True)
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


async def main(server_url: str) -> dict[str, Any]:
    results: dict[str, Any] = {"loggers": LOGGERS, "interval_minutes": INTERVAL_MINUTES}
    directory = Path(tempfile.mkdtemp(prefix="celltrail-archive-files-"))
    try:
        for shape in _TEMPERATURES:
            results[shape] = await measure(server_url, shape, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("server_url", nargs="?", help="a superuser's URL (default: a private server)")
    with _server(parser.parse_args().server_url) as url:
        print(json.dumps(asyncio.run(main(url)), indent=2))
