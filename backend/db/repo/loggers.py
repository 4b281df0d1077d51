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
    # The declared sampling interval gap detection works from (migration 0016); None: learned.
    sample_interval_s: int | None = None


class LoggerChanges(msgspec.Struct, frozen=True, kw_only=True):
    """The registry fields an administrator or coordinator sets (all of them, after the change)."""

    model: str
    firmware: str
    calibration_due: date | None
    owner_site: str | None
    active: bool
    sample_interval_s: int | None = None


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
    "online, status_at, battery_pct, reported_firmware, last_seen_at, sample_interval_s"
)


async def insert(conn: Conn, logger_id: str, changes: LoggerChanges) -> LoggerRow | None:
    """None when the id is taken."""
    row = await conn.fetchrow(
        "INSERT INTO loggers (id, model, firmware, calibration_due, owner_site, active, sample_interval_s) "  # noqa: S608
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING "
        f"RETURNING {_COLUMNS}",
        logger_id,
        changes.model,
        changes.firmware,
        changes.calibration_due,
        changes.owner_site,
        changes.active,
        changes.sample_interval_s,
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
        "active = $6, sample_interval_s = $7 "
        f"WHERE id = $1 RETURNING {_COLUMNS}",
        logger_id,
        changes.model,
        changes.firmware,
        changes.calibration_due,
        changes.owner_site,
        changes.active,
        changes.sample_interval_s,
    )
    assert row is not None
    return LoggerRow(**row)


async def set_broker_password_hash(conn: Conn, logger_id: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE loggers SET broker_password_hash = $2, broker_password_set_at = now() WHERE id = $1",
        logger_id,
        password_hash,
    )


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


# Shipment statuses after which a shipment no longer holds its logger; the partial unique index
# shipments_one_active_per_logger (migration 0009) uses the same list.
_ACTIVE = "status NOT IN ('received', 'quarantined', 'cancelled')"


async def active_shipment(conn: Conn, logger_id: str) -> ShipmentRef | None:
    """The logger's assignment: the one active shipment carrying it (the database allows no second)."""
    row = await conn.fetchrow(
        f"SELECT id, coi, from_site, to_site, status FROM shipments WHERE logger_id = $1 AND {_ACTIVE}",  # noqa: S608
        logger_id,
    )
    return ShipmentRef(**row) if row else None


class LoanRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    logger_id: str
    site: str
    lent_by: str
    lent_at: datetime
    reason: str
    revoked_by: str | None
    revoked_at: datetime | None
    revoke_reason: str | None


_LOAN = """
SELECT n.id, n.logger_id, n.site, lender.username AS lent_by, n.lent_at, n.reason,
       revoker.username AS revoked_by, n.revoked_at, n.revoke_reason
FROM logger_loans n
JOIN users lender ON lender.id = n.lent_by
LEFT JOIN users revoker ON revoker.id = n.revoked_by
"""


async def lend(conn: Conn, logger_id: str, site: str, actor_id: int, reason: str) -> LoanRow | None:
    """A new open loan; None when the logger is already lent to that site."""
    loan_id = await conn.fetchval(
        """INSERT INTO logger_loans (logger_id, site, lent_by, reason) VALUES ($1, $2, $3, $4)
           ON CONFLICT (logger_id, site) WHERE revoked_at IS NULL DO NOTHING
           RETURNING id""",
        logger_id,
        site,
        actor_id,
        reason,
    )
    if loan_id is None:
        return None
    row = await conn.fetchrow(_LOAN + " WHERE n.id = $1", loan_id)
    assert row is not None
    return LoanRow(**row)


async def revoke_loans(
    conn: Conn, logger_id: str, site: str | None, actor_id: int, reason: str
) -> list[LoanRow]:
    """Revoke the open loan of the logger to `site` (None: every open loan); the loans revoked."""
    ids = await conn.fetch(
        """UPDATE logger_loans SET revoked_by = $3, revoked_at = now(), revoke_reason = $4
           WHERE logger_id = $1 AND ($2::text IS NULL OR site = $2) AND revoked_at IS NULL
           RETURNING id""",
        logger_id,
        site,
        actor_id,
        reason,
    )
    if not ids:
        return []
    rows = await conn.fetch(_LOAN + " WHERE n.id = ANY($1::bigint[]) ORDER BY n.site", [r["id"] for r in ids])
    return [LoanRow(**r) for r in rows]


async def loans(conn: Conn, logger_id: str) -> list[LoanRow]:
    """Every loan of the logger, open and revoked, newest first."""
    rows = await conn.fetch(_LOAN + " WHERE n.logger_id = $1 ORDER BY n.lent_at DESC, n.id DESC", logger_id)
    return [LoanRow(**r) for r in rows]


async def lent_to(conn: Conn, logger_id: str) -> list[str]:
    """The sites the logger is lent to now."""
    rows = await conn.fetch(
        "SELECT site FROM logger_loans WHERE logger_id = $1 AND revoked_at IS NULL ORDER BY site", logger_id
    )
    return [r["site"] for r in rows]
