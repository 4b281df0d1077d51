"""The coordinator's live board: one row per active shipment with everything the board shows, in one
round trip (the board is refreshed on every live change, so it must stay cheap)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class BoardRow(msgspec.Struct, frozen=True):
    id: str
    coi: str
    from_site: str
    to_site: str
    status: str
    container_id: str
    profile_code: str
    profile: Any
    planned_departure: datetime
    planned_arrival: datetime
    departed_at: datetime | None
    arrived_at: datetime | None
    holder_name: str | None
    logger_id: str | None
    logger_online: bool | None
    logger_battery_pct: int | None
    logger_last_seen_at: datetime | None
    last_action: str | None
    last_outcome: str | None
    last_scan_at: datetime | None
    last_scan_site: str | None
    last_scan_by: str | None
    reading_ts: datetime | None
    reading_temp_c: float | None
    reading_battery_pct: int | None
    alerts_critical: int
    alerts_warning: int
    alerts_info: int


_SELECT = """
SELECT s.id, s.coi, s.from_site, s.to_site, s.status, s.container_id, s.profile_code, s.profile,
       s.planned_departure, s.planned_arrival, s.departed_at, s.arrived_at,
       (SELECT full_name FROM users WHERE id = s.holder_id) AS holder_name,
       s.logger_id, l.online AS logger_online, l.battery_pct AS logger_battery_pct,
       l.last_seen_at AS logger_last_seen_at,
       e.action AS last_action, e.outcome AS last_outcome, e.server_time AS last_scan_at,
       e.site AS last_scan_site, e.actor_name AS last_scan_by,
       r.ts AS reading_ts, r.temp_c::float8 AS reading_temp_c, r.battery_pct AS reading_battery_pct,
       coalesce(a.critical, 0) AS alerts_critical, coalesce(a.warning, 0) AS alerts_warning,
       coalesce(a.info, 0) AS alerts_info
FROM shipments s
LEFT JOIN loggers l ON l.id = s.logger_id
LEFT JOIN LATERAL (
    SELECT action, outcome, server_time, site, actor_name FROM custody_events
    WHERE shipment_id = s.id ORDER BY id DESC LIMIT 1
) e ON true
-- The leg's last reading: its logger's newest inside the leg's window (migration 0023), through the
-- readings key, reading only the months the window spans (migration 0041).
LEFT JOIN LATERAL (
    SELECT ts, temp_c, battery_pct FROM readings
    WHERE logger_id = s.logger_id AND ts >= s.leg_from AND (s.leg_until IS NULL OR ts < s.leg_until)
    ORDER BY ts DESC LIMIT 1
) r ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE severity = 'critical') AS critical,
           count(*) FILTER (WHERE severity = 'warning') AS warning,
           count(*) FILTER (WHERE severity = 'info') AS info
    FROM alerts WHERE shipment_id = s.id AND status IN ('open', 'acknowledged', 'cleared_unacknowledged')
) a ON true
WHERE s.status NOT IN ('received', 'quarantined', 'cancelled')
  AND ($1::text[] IS NULL OR s.from_site = ANY($1) OR s.to_site = ANY($1))
"""


async def active(conn: Conn, sites: list[str] | None, limit: int) -> list[BoardRow]:
    rows = await conn.fetch(_SELECT + " ORDER BY s.planned_arrival, s.id LIMIT $2", sites, limit)
    return [BoardRow(**r) for r in rows]
