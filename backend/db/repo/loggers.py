"""The logger registry: rows, changes, status updates from the fleet and the shipment a logger travels with."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class LoggerRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    model: str
    firmware: str
    calibration_due: date | None
    owner_site: str | None
    active: bool
    created_at: datetime
    broker_password_set_at: datetime | None
    online: bool | None
    status_at: datetime | None
    battery_pct: int | None
    reported_firmware: str | None
    last_seen_at: datetime | None


class LoggerChanges(msgspec.Struct, frozen=True, kw_only=True):
    """The registry fields an administrator or coordinator sets (all of them, after the change)."""

    model: str
    firmware: str
    calibration_due: date | None
    owner_site: str | None
    active: bool


class ShipmentRef(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    coi: str
    from_site: str
    to_site: str
    status: str


class StatusColumns(msgspec.Struct, kw_only=True):
    """Logger statuses of one batch as parallel columns for `unnest`."""

    logger_id: list[str]
    online: list[bool]
    ts: list[datetime]
    received_at: list[datetime]
    retained: list[bool]
    battery_pct: list[int | None]
    firmware: list[str | None]


_COLUMNS = (
    "id, model, firmware, calibration_due, owner_site, active, created_at, broker_password_set_at, "
    "online, status_at, battery_pct, reported_firmware, last_seen_at"
)


async def insert(conn: Conn, logger_id: str, changes: LoggerChanges) -> LoggerRow | None:
    """None when the id is taken."""
    row = await conn.fetchrow(
        "INSERT INTO loggers (id, model, firmware, calibration_due, owner_site, active) "  # noqa: S608
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING "
        f"RETURNING {_COLUMNS}",
        logger_id,
        changes.model,
        changes.firmware,
        changes.calibration_due,
        changes.owner_site,
        changes.active,
    )
    return LoggerRow(**row) if row else None


async def get(conn: Conn, logger_id: str, *, for_update: bool = False) -> LoggerRow | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM loggers WHERE id = $1{lock}", logger_id)  # noqa: S608
    return LoggerRow(**row) if row else None


async def list_all(conn: Conn, sites: list[str] | None) -> list[LoggerRow]:
    """Every logger, or only those owned by one of `sites`."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM loggers "  # noqa: S608 - constant column list
        "WHERE $1::text[] IS NULL OR owner_site = ANY($1::text[]) ORDER BY id",
        sites,
    )
    return [LoggerRow(**r) for r in rows]


async def update(conn: Conn, logger_id: str, changes: LoggerChanges) -> LoggerRow:
    row = await conn.fetchrow(
        "UPDATE loggers SET model = $2, firmware = $3, calibration_due = $4, owner_site = $5, "  # noqa: S608
        "active = $6 "
        f"WHERE id = $1 RETURNING {_COLUMNS}",
        logger_id,
        changes.model,
        changes.firmware,
        changes.calibration_due,
        changes.owner_site,
        changes.active,
    )
    assert row is not None
    return LoggerRow(**row)


async def set_broker_password_hash(conn: Conn, logger_id: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE loggers SET broker_password_hash = $2, broker_password_set_at = now() WHERE id = $1",
        logger_id,
        password_hash,
    )


async def broker_password_hash(conn: Conn, logger_id: str) -> str | None:
    value = await conn.fetchval("SELECT broker_password_hash FROM loggers WHERE id = $1", logger_id)
    return str(value) if value is not None else None


# The newest status per logger wins, by the logger's own timestamp, so a retained status replayed by the
# broker or a status delivered late never overwrites a newer one. Only fresh (not retained) statuses
# move last_seen_at. Rows are locked in id order first: concurrent batches cannot deadlock on them.
_APPLY_STATUSES = """
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::boolean[], $3::timestamptz[], $4::timestamptz[], $5::boolean[],
                         $6::smallint[], $7::text[])
        AS u(logger_id, online, ts, received_at, retained, battery_pct, firmware)
),
latest AS (
    SELECT DISTINCT ON (logger_id) logger_id, online, ts, battery_pct, firmware,
           max(received_at) FILTER (WHERE NOT retained) OVER (PARTITION BY logger_id) AS seen_at
    FROM input
    ORDER BY logger_id, ts DESC
),
locked AS (
    SELECT l.id FROM loggers l JOIN latest s ON s.logger_id = l.id
    WHERE l.active
    ORDER BY l.id
    FOR UPDATE OF l
)
UPDATE loggers l SET
    online = CASE WHEN l.status_at IS NULL OR s.ts >= l.status_at THEN s.online ELSE l.online END,
    battery_pct = CASE WHEN l.status_at IS NULL OR s.ts >= l.status_at
                       THEN coalesce(s.battery_pct, l.battery_pct) ELSE l.battery_pct END,
    reported_firmware = CASE WHEN l.status_at IS NULL OR s.ts >= l.status_at
                             THEN coalesce(s.firmware, l.reported_firmware) ELSE l.reported_firmware END,
    status_at = greatest(l.status_at, s.ts),
    last_seen_at = greatest(l.last_seen_at, s.seen_at)
FROM latest s
WHERE l.id = s.logger_id AND l.id IN (SELECT id FROM locked)
RETURNING l.id
"""


async def apply_statuses(conn: Conn, columns: StatusColumns) -> set[str]:
    """Update the loggers' state; return the ids that were updated (registered and active)."""
    rows = await conn.fetch(
        _APPLY_STATUSES,
        columns.logger_id,
        columns.online,
        columns.ts,
        columns.received_at,
        columns.retained,
        columns.battery_pct,
        columns.firmware,
    )
    return {r["id"] for r in rows}


async def shipment_at(conn: Conn, logger_id: str, when: datetime) -> ShipmentRef | None:
    """The shipment the logger travels with at `when`, by the same rule that links readings."""
    row = await conn.fetchrow(
        """SELECT id, coi, from_site, to_site, status FROM shipments
           WHERE logger_id = $1
             AND $2 >= coalesce(departed_at, planned_departure)
             AND $2 < coalesce(received_at, 'infinity')
           ORDER BY coalesce(departed_at, planned_departure) DESC
           LIMIT 1""",
        logger_id,
        when,
    )
    return ShipmentRef(**row) if row else None
