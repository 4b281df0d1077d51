"""The periodic checks' queries: legs whose logger fell silent, legs running late, and the open alerts of
those kinds that the checks close again."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class Silence(msgspec.Struct, frozen=True):
    shipment_id: str
    coi: str
    from_site: str
    to_site: str
    logger_id: str
    last_data: datetime


async def silent_legs(conn: Conn, since: datetime) -> list[Silence]:
    """Legs under way whose logger's newest reading (or, with none, the departure) is older than `since`
    and whose silence has no alert yet. A silence is one alert whatever became of it: once the logger is
    taken as lost and its alert closed, nothing reopens until the logger reports again (issue 20,
    finding 4); and no insert is tried only to be refused, which spent an alert id each time."""
    rows = await conn.fetch(
        """SELECT leg.* FROM (
               SELECT s.id AS shipment_id, s.coi, s.from_site, s.to_site, s.logger_id,
                      -- Readings before the departure cannot change greatest(): bounded by it, the
                      -- look-up reads only the months since (readings are partitioned by month).
                      greatest(s.departed_at, (SELECT r.ts FROM readings r WHERE r.logger_id = s.logger_id
                                                 AND r.ts >= s.departed_at
                                               ORDER BY r.ts DESC LIMIT 1)) AS last_data
               FROM shipments s
               WHERE s.logger_id IS NOT NULL AND s.departed_at IS NOT NULL AND s.received_at IS NULL
                 AND s.status NOT IN ('cancelled', 'received', 'quarantined')
           ) leg
           WHERE leg.last_data < $1
             AND NOT EXISTS (SELECT 1 FROM alerts a
                             WHERE a.shipment_id = leg.shipment_id AND a.kind = 'logger_silent'
                               AND a.started_at >= leg.last_data)""",
        since,
    )
    return [Silence(**r) for r in rows]


class OpenAlert(msgspec.Struct, frozen=True):
    id: int
    shipment_id: str | None
    logger_id: str | None
    started_at: datetime
    sites: list[str]
    coi: str | None
    # The logger's newest reading after the alert started (None when there is none: callers ask only
    # whether data came back), the leg's receipt and planned arrival, arrival: what may end the alert.
    last_data: datetime | None
    received_at: datetime | None
    arrived_at: datetime | None
    shipment_status: str | None


async def open_of_kind(conn: Conn, kind: str, logger_ids: list[str] | None = None) -> list[OpenAlert]:
    rows = await conn.fetch(
        """SELECT a.id, a.shipment_id, a.logger_id, a.started_at, a.sites, a.coi,
                  -- Bounded by the alert's start, the look-up skips the months before it
                  -- (readings are partitioned by month).
                  (SELECT r.ts FROM readings r WHERE r.logger_id = a.logger_id AND r.ts > a.started_at
                   ORDER BY r.ts DESC LIMIT 1) AS last_data,
                  s.received_at, s.arrived_at, s.status AS shipment_status
           FROM alerts a LEFT JOIN shipments s ON s.id = a.shipment_id
           WHERE a.kind = $1 AND a.status IN ('open', 'acknowledged')
             AND ($2::text[] IS NULL OR a.logger_id = ANY($2))""",
        kind,
        logger_ids,
    )
    return [OpenAlert(**r) for r in rows]


async def close_automatically(conn: Conn, alert_id: int, reason: str) -> None:
    await conn.execute(
        """UPDATE alerts SET status = 'closed', closed_at = now(), close_reason = $2,
                  ended_at = coalesce(ended_at, now())
           WHERE id = $1 AND status IN ('open', 'acknowledged')""",
        alert_id,
        reason,
    )


class Lateness(msgspec.Struct, frozen=True):
    shipment_id: str
    coi: str
    from_site: str
    to_site: str
    logger_id: str | None
    planned_arrival: datetime


async def late_legs(conn: Conn, before: datetime) -> list[Lateness]:
    """Late legs without an open lateness alert: an insert refused by the unique index still spends an
    alert id, so the ids jumped by one per late leg and housekeeping cycle (issue 20, finding 11)."""
    rows = await conn.fetch(
        """SELECT s.id AS shipment_id, s.coi, s.from_site, s.to_site, s.logger_id, s.planned_arrival
           FROM shipments s
           WHERE s.planned_arrival < $1 AND s.arrived_at IS NULL AND s.received_at IS NULL
             AND s.status NOT IN ('cancelled', 'arrived', 'received', 'quarantined')
             AND NOT EXISTS (SELECT 1 FROM alerts a
                             WHERE a.shipment_id = s.id AND a.kind = 'shipment_late'
                               AND a.status IN ('open', 'acknowledged'))""",
        before,
    )
    return [Lateness(**r) for r in rows]
