"""Reads for records and exports: a case's alerts with the names of who handled them, readings by
shipment or logger, alerts by site and time, and the look-ups EPCIS capture needs (GLN, SSCC)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from backend.db.repo.alerts import AlertRow
from backend.services import archive, archive_files

if TYPE_CHECKING:
    from backend.db.types import Conn


# Same columns as the alert list; only the names differ (printed names, for the record).
AlertEntry = AlertRow


class ReadingEntry(msgspec.Struct, frozen=True):
    ts: datetime
    logger_id: str
    shipment_id: str | None
    temp_c: float
    battery_pct: int | None
    lid_open: bool | None
    received_at: datetime


# Printed names (not usernames) of who acknowledged and who closed: the record names people.
_ALERTS = """
SELECT a.id, a.kind, a.severity, a.status, a.title, a.detail, a.coi, a.shipment_id, a.unit_id, a.logger_id,
       a.sites, a.started_at, a.ended_at, a.peak_value, a.rule, a.event_id,
       a.acknowledged_at, (SELECT full_name FROM users WHERE id = a.acknowledged_by) AS acknowledged_by,
       a.ack_comment,
       a.closed_at, (SELECT full_name FROM users WHERE id = a.closed_by) AS closed_by, a.close_reason
FROM alerts a
"""
# real -> numeric -> float8 reads 4.37 back as 4.37 rather than the float4's 4.369999885559082.
_READINGS = """
SELECT ts, logger_id, shipment_id, temp_c::numeric::float8 AS temp_c, battery_pct, lid_open, received_at
FROM readings
"""


async def user_names(conn: Conn, ids: list[int]) -> dict[int, str]:
    rows = await conn.fetch("SELECT id, full_name FROM users WHERE id = ANY($1::bigint[])", ids)
    return {r["id"]: r["full_name"] for r in rows}


async def alerts_of_case(conn: Conn, coi: str) -> list[AlertEntry]:
    rows = await conn.fetch(
        _ALERTS  # noqa: S608 - constant query text, values are bound
        + """ WHERE a.coi = $1 OR a.shipment_id IN (SELECT id FROM shipments WHERE coi = $1)
              ORDER BY a.started_at, a.id""",
        coi,
    )
    return [AlertEntry(**r) for r in rows]


async def alerts_between(
    conn: Conn,
    visible_sites: list[str] | None,
    site: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[AlertEntry]:
    """Alerts started in [since, until) touching `site` (any when None) and one of `visible_sites` (any
    when None), oldest first."""
    rows = await conn.fetch(
        _ALERTS
        + """ WHERE ($1::text[] IS NULL OR a.sites && $1) AND ($2::text IS NULL OR $2 = ANY(a.sites))
              AND ($3::timestamptz IS NULL OR a.started_at >= $3) AND ($4::timestamptz IS NULL OR a.started_at < $4)
              ORDER BY a.started_at, a.id LIMIT $5""",
        visible_sites,
        site,
        since,
        until,
        limit,
    )
    return [AlertEntry(**r) for r in rows]


async def readings_of_shipment(
    conn: Conn, shipment_id: str, since: datetime | None, until: datetime | None, limit: int
) -> list[ReadingEntry]:
    # The leg's readings by its window (migration 0023), not by where each was filed when stored.
    rows = await conn.fetch(
        _READINGS.replace("FROM readings", "FROM leg_readings($1)")
        + """ WHERE ($2::timestamptz IS NULL OR ts >= $2)
              AND ($3::timestamptz IS NULL OR ts < $3) ORDER BY ts LIMIT $4""",
        shipment_id,
        since,
        until,
        limit,
    )
    # Months archived out of the database are read from their files (issue 26).
    kept = await archive.leg_readings(conn, shipment_id, since, until)
    return archive.merged([ReadingEntry(**r) for r in rows], [_entry(r) for r in kept], limit)


async def readings_of_logger(
    conn: Conn, logger_id: str, since: datetime | None, until: datetime | None, limit: int
) -> list[ReadingEntry]:
    rows = await conn.fetch(
        _READINGS
        + """ WHERE logger_id = $1 AND ($2::timestamptz IS NULL OR ts >= $2)
              AND ($3::timestamptz IS NULL OR ts < $3) ORDER BY ts LIMIT $4""",
        logger_id,
        since,
        until,
        limit,
    )
    kept = await archive.logger_readings(conn, logger_id, since, until)
    return archive.merged([ReadingEntry(**r) for r in rows], [_entry(r) for r in kept], limit)


def _entry(r: archive.ArchivedReading) -> ReadingEntry:
    temp = archive_files.as_numeric(r.temp_c)
    return ReadingEntry(r.ts, r.logger_id, r.shipment_id, temp, r.battery_pct, r.lid_open, r.received_at)


async def logger_owner(conn: Conn, logger_id: str) -> tuple[bool, str | None]:
    """(registered, owner site)."""
    row = await conn.fetchrow("SELECT owner_site FROM loggers WHERE id = $1", logger_id)
    return (row is not None, row["owner_site"] if row else None)


async def site_by_gln(conn: Conn, gln: str) -> str | None:
    value = await conn.fetchval("SELECT code FROM sites WHERE gln = $1 ORDER BY code LIMIT 1", gln)
    return str(value) if value is not None else None


async def shipment_by_sscc(conn: Conn, sscc: str) -> str | None:
    """The latest shipment whose container is labelled with this SSCC (as digits or element string)."""
    value = await conn.fetchval(
        """SELECT id FROM shipments WHERE container_id = ANY($1::text[])
           ORDER BY created_at DESC LIMIT 1""",
        [sscc, f"00{sscc}", f"(00){sscc}"],
    )
    return str(value) if value is not None else None


# Accepted custody steps of cases visible to `sites` (NULL: all), in (server_time, id) order after a
# position. Visibility is the object gate's rule for cases (treatment site, legs' ends, units' sites).
_STEPS = """
SELECT e.id, e.coi, e.server_time FROM custody_events e JOIN cases c ON c.coi = e.coi
WHERE e.outcome = 'accepted'
  AND ($1::text[] IS NULL
       OR c.treatment_site = ANY($1)
       OR EXISTS (SELECT 1 FROM shipments s WHERE s.coi = e.coi AND (s.from_site = ANY($1) OR s.to_site = ANY($1)))
       OR EXISTS (SELECT 1 FROM units u WHERE u.coi = e.coi AND u.site = ANY($1)))
  AND ($2::timestamptz IS NULL OR e.server_time >= $2)
  AND ($3::timestamptz IS NULL OR e.server_time < $3)
  AND ($4::text[] IS NULL OR e.action = ANY($4))
  AND ($5::timestamptz IS NULL OR (e.server_time, e.id) > ($5, $6::bigint))
ORDER BY e.server_time, e.id
LIMIT $7
"""


async def custody_steps_page(
    conn: Conn,
    sites: list[str] | None,
    *,
    since: datetime | None,
    until: datetime | None,
    actions: list[str] | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[tuple[int, str, datetime]]:
    rows = await conn.fetch(
        _STEPS,
        sites,
        since,
        until,
        actions,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [(r["id"], r["coi"], r["server_time"]) for r in rows]
