"""Readings: the set-based batch insert of the ingest path, and reading look-ups for the registry.

The batch insert is one statement on purpose: the readings, their shipment links and the live-page
summaries in the outbox are written together in one round trip, whatever the batch size.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class ReadingColumns(msgspec.Struct, kw_only=True):
    """A batch of readings as parallel columns, the shape `unnest` takes."""

    logger_id: list[str]
    ts: list[datetime]
    temp_c: list[float]
    battery_pct: list[int | None]
    lid_open: list[bool | None]
    received_at: list[datetime]


class BatchInsert(msgspec.Struct, frozen=True):
    # Readings of registered, active loggers in the batch (stored + duplicates).
    known: int
    stored: int
    # Readings of loggers that are not registered or not active (dead letters, not readings)...
    unknown: int
    # ...and how many of those dead letters are new (a redelivered one is kept once).
    unknown_new: int
    # Outbox rows written for live pages.
    announced: int
    # Readings that conflict with one stored or earlier in the batch (same logger and time, another
    # value): dead letters naming both values; the first reading stays (issue 20, finding 7).
    conflicting: int = 0
    conflicting_new: int = 0


class ReadingRow(msgspec.Struct, frozen=True):
    ts: datetime
    temp_c: float
    battery_pct: int | None
    lid_open: bool | None
    shipment_id: str | None
    received_at: datetime


# The shipment a reading belongs to: the leg of its logger whose window holds the reading's time
# (migration 0023: from packing, else pick-up, else the planned departure, never before the logger's
# previous receipt, until receipt). That includes a received leg, for a reading taken during it that
# arrives late (a backlog): the leg is re-evaluated with it. Anything else keeps shipment_id NULL. No
# planner can draw readings to a shipment by its dates: a logger joins one only while it is free, and
# a backdated departure does not reach back past the previous receipt. The engine and the reports read
# a leg by its window (`leg_readings`), so a window that moves later is followed there.
# Rows are inserted in (logger, ts) order so two concurrent batches that overlap take their unique-index
# locks in the same order and cannot deadlock.
_INSERT_BATCH = """
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::real[], $4::smallint[], $5::boolean[],
                         $6::timestamptz[]) WITH ORDINALITY
        AS u(logger_id, ts, temp_c, battery_pct, lid_open, received_at, position)
),
known AS (
    SELECT i.* FROM input i JOIN loggers l ON l.id = i.logger_id AND l.active
),
-- Readings of loggers the registry does not know (or has deactivated) are kept whole as dead letters,
-- once per (logger, ts) like readings, so a redelivery does not double them.
unknown AS (
    SELECT i.* FROM input i WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.position = i.position)
),
unknown_stored AS (
    INSERT INTO dead_letters (batch_id, bridge_id, origin, item_index, kind, reason, topic, payload, logger_id,
                              reading_ts, received_at)
    SELECT $7, $8, 'reading', u.position - 1, 'unknown_logger',
           'unknown logger ' || u.logger_id || ': not registered, or deactivated, in the logger registry',
           NULL,
           convert_to(json_build_object(
               'logger_id', u.logger_id,
               'ts', to_char(u.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'temp_c', u.temp_c, 'battery_pct', u.battery_pct, 'lid_open', u.lid_open,
               'received_at', to_char(u.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
           )::text, 'UTF8'),
           u.logger_id, u.ts, u.received_at
    FROM unknown u
    ON CONFLICT DO NOTHING
    RETURNING 1
),
-- The legs of the batch's loggers that may hold one of its readings: windows do not overlap. Looked up
-- per logger through shipments_leg_lookup (migration 0040), whose key is this filter's, so a reading
-- visits the legs still open or ended after it, never the logger's whole past; `OFFSET 0` keeps the
-- look-up per logger rather than a join over every shipment.
batch_loggers AS (
    SELECT logger_id, min(ts) AS first_ts FROM known GROUP BY logger_id
),
assignment AS (
    SELECT a.* FROM batch_loggers b, LATERAL (
        SELECT sh.logger_id, sh.id, sh.leg_from, sh.leg_until
        FROM shipments sh
        WHERE sh.logger_id = b.logger_id AND sh.leg_from IS NOT NULL
          AND coalesce(sh.leg_until, 'infinity'::timestamptz) > b.first_ts
        OFFSET 0
    ) a
),
inserted AS (
    INSERT INTO readings (logger_id, ts, temp_c, battery_pct, lid_open, shipment_id, received_at)
    SELECT k.logger_id, k.ts, k.temp_c, k.battery_pct, k.lid_open, a.id, k.received_at
    FROM known k
    LEFT JOIN assignment a ON a.logger_id = k.logger_id AND k.ts >= a.leg_from
                           AND (a.leg_until IS NULL OR k.ts < a.leg_until)
    ORDER BY k.logger_id, k.ts, k.position
    ON CONFLICT (logger_id, ts) DO NOTHING
    RETURNING logger_id, ts, temp_c, shipment_id
),
-- What was not inserted is a duplicate, or a conflict: the same logger and time with another value,
-- against the batch's first reading at that time (inserted just now: rows go in in batch order) or the
-- one stored before this statement (its snapshot). No sort and no look-up for a batch of new readings:
-- one hash join with what was inserted, and the readings index only for rows that were not.
not_inserted AS MATERIALIZED (
    SELECT k.* FROM known k
    WHERE NOT EXISTS (SELECT 1 FROM inserted i WHERE i.logger_id = k.logger_id AND i.ts = k.ts)
),
conflicts AS (
    SELECT k.position, k.logger_id, k.ts, k.temp_c, k.received_at, i.temp_c AS kept_c
    FROM known k JOIN inserted i ON i.logger_id = k.logger_id AND i.ts = k.ts
    WHERE i.temp_c IS DISTINCT FROM k.temp_c
    UNION ALL
    SELECT k.position, k.logger_id, k.ts, k.temp_c, k.received_at, r.temp_c AS kept_c
    FROM not_inserted k
    -- By key, per reading: the month partition of its time alone, never a pass over every month.
    JOIN LATERAL (
        SELECT s.temp_c FROM readings s WHERE s.logger_id = k.logger_id AND s.ts = k.ts OFFSET 0
    ) r ON true
    WHERE r.temp_c IS DISTINCT FROM k.temp_c
),
conflicts_stored AS (
    INSERT INTO dead_letters (batch_id, bridge_id, origin, item_index, kind, reason, topic, payload, logger_id,
                              reading_ts, received_at)
    SELECT $7, $8, 'reading', c.position - 1, 'conflicting_reading',
           'conflicting reading of ' || c.logger_id || ' at '
               || to_char(c.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || ': '
               || c.kept_c || ' °C kept, ' || c.temp_c || ' °C received; the first reading stays',
           NULL,
           convert_to(json_build_object(
               'logger_id', c.logger_id,
               'ts', to_char(c.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'kept_temp_c', c.kept_c, 'temp_c', c.temp_c,
               'received_at', to_char(c.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
           )::text, 'UTF8'),
           c.logger_id, c.ts, c.received_at
    FROM conflicts c
    ON CONFLICT DO NOTHING
    RETURNING 1
),
per_logger AS (
    SELECT shipment_id, logger_id, count(*) AS n, max(ts) AS last_ts,
           (array_agg(temp_c ORDER BY ts DESC))[1] AS last_temp_c
    FROM inserted
    GROUP BY shipment_id, logger_id
),
-- Who may see each summary: a shipment's sender and receiver, else the logger's owner site.
addressed AS (
    SELECT p.*, sh.coi,
           CASE WHEN p.shipment_id IS NOT NULL THEN ARRAY[sh.from_site, sh.to_site]
                WHEN l.owner_site IS NOT NULL THEN ARRAY[l.owner_site]
                ELSE '{}'::text[] END AS sites
    FROM per_logger p
    JOIN loggers l ON l.id = p.logger_id
    -- By key, per leg of the batch: never a pass over every shipment ever made.
    LEFT JOIN LATERAL (
        SELECT s.coi, s.from_site, s.to_site FROM shipments s WHERE s.id = p.shipment_id OFFSET 0
    ) sh ON true
),
announced AS (
    INSERT INTO outbox (kind, sites, coi, payload)
    SELECT 'readings', sites, coi,
           jsonb_build_object(
               'batch_id', $7::text,
               'shipment_id', shipment_id,
               'loggers', jsonb_agg(jsonb_build_object(
                   'logger_id', logger_id, 'count', n, 'last_ts', last_ts, 'last_temp_c', last_temp_c)
                   ORDER BY logger_id))
    FROM addressed
    GROUP BY shipment_id, coi, sites
    RETURNING 1
)
SELECT (SELECT count(*) FROM known) AS known,
       (SELECT coalesce(sum(n), 0) FROM per_logger) AS stored,
       (SELECT count(*) FROM unknown) AS unknown,
       (SELECT count(*) FROM unknown_stored) AS unknown_new,
       (SELECT count(*) FROM announced) AS announced,
       (SELECT count(*) FROM conflicts) AS conflicting,
       (SELECT count(*) FROM conflicts_stored) AS conflicting_new
"""


async def insert_batch(conn: Conn, columns: ReadingColumns, batch_id: str, bridge_id: str) -> BatchInsert:
    row = await conn.fetchrow(
        _INSERT_BATCH,
        columns.logger_id,
        columns.ts,
        columns.temp_c,
        columns.battery_pct,
        columns.lid_open,
        columns.received_at,
        batch_id,
        bridge_id,
    )
    assert row is not None
    return BatchInsert(
        known=int(row["known"]),
        stored=int(row["stored"]),
        unknown=int(row["unknown"]),
        unknown_new=int(row["unknown_new"]),
        announced=int(row["announced"]),
        conflicting=int(row["conflicting"]),
        conflicting_new=int(row["conflicting_new"]),
    )


# real -> numeric -> float8 reads 4.37 back as 4.37 rather than the float4's 4.369999885559082.
_COLUMNS = "ts, temp_c::numeric::float8 AS temp_c, battery_pct, lid_open, shipment_id, received_at"


async def between(
    conn: Conn, logger_id: str, since: datetime, until: datetime, limit: int
) -> list[ReadingRow]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM readings "  # noqa: S608 - constant column list
        "WHERE logger_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4",
        logger_id,
        since,
        until,
        limit,
    )
    return [ReadingRow(**r) for r in rows]


async def latest(conn: Conn, logger_id: str) -> ReadingRow | None:
    """The logger's newest reading, from the newest month that holds one (migration 0061), not by asking
    every month kept."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM latest_reading($1)", logger_id)  # noqa: S608
    return ReadingRow(**row) if row else None
