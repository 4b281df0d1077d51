"""Alerts: one open row per ongoing condition (a partial unique index on condition_key), and each alert's
append-only history of acknowledgements (migration 0015)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class Acknowledgement(msgspec.Struct, frozen=True):
    by: str
    by_name: str
    at: datetime
    comment: str
    # The alarm state it acknowledged and the one it left (cleared_unacknowledged -> resolved...).
    status_before: str
    status_after: str
    severity: str


class AlertRow(msgspec.Struct, frozen=True):
    id: int
    kind: str
    severity: str
    status: str
    title: str
    detail: str
    coi: str | None
    shipment_id: str | None
    unit_id: str | None
    logger_id: str | None
    sites: list[str]
    started_at: datetime
    ended_at: datetime | None
    peak_value: float | None
    rule: Any
    event_id: int | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None
    # Every acknowledgement, oldest first; acknowledged_* above are the first of them.
    acknowledgements: list[Acknowledgement] = msgspec.field(default_factory=list)


_SELECT = """
SELECT a.id, a.kind, a.severity, a.status, a.title, a.detail, a.coi, a.shipment_id, a.unit_id, a.logger_id,
       a.sites, a.started_at, a.ended_at, a.peak_value, a.rule, a.event_id, a.acknowledged_at,
       (SELECT username FROM users WHERE id = a.acknowledged_by) AS acknowledged_by, a.ack_comment,
       a.closed_at, (SELECT username FROM users WHERE id = a.closed_by) AS closed_by, a.close_reason,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'by', k.username, 'by_name', k.full_name, 'at', k.at, 'comment', k.comment,
                   'status_before', k.status_before, 'status_after', k.status_after, 'severity', k.severity)
               ORDER BY k.id), '[]'::jsonb)
        FROM alert_acknowledgements k WHERE k.alert_id = a.id) AS acknowledgements
FROM alerts a
"""


def _alert(row: Any) -> AlertRow:
    values = dict(row)
    values["acknowledgements"] = msgspec.convert(values["acknowledgements"], list[Acknowledgement])
    return AlertRow(**values)


async def open_alert(
    conn: Conn,
    *,
    kind: str,
    severity: str,
    title: str,
    detail: str,
    condition_key: str,
    sites: list[str],
    started_at: datetime,
    coi: str | None = None,
    shipment_id: str | None = None,
    unit_id: str | None = None,
    logger_id: str | None = None,
    event_id: int | None = None,
    rule: Any = None,
    peak_value: float | None = None,
) -> int | None:
    """The new alert's id, or None when the same condition already has an open alert."""
    value = await conn.fetchval(
        """INSERT INTO alerts (kind, severity, title, detail, condition_key, sites, started_at, coi,
                               shipment_id, unit_id, logger_id, event_id, rule, peak_value)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT (condition_key) WHERE status IN ('open', 'acknowledged') DO NOTHING
           RETURNING id""",
        kind,
        severity,
        title,
        detail,
        condition_key,
        sites,
        started_at,
        coi,
        shipment_id,
        unit_id,
        logger_id,
        event_id,
        rule or {},
        peak_value,
    )
    return int(value) if value is not None else None


async def get(conn: Conn, alert_id: int, lock: bool = False) -> AlertRow | None:
    if lock:
        await conn.execute("SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE", alert_id)
    row = await conn.fetchrow(_SELECT + " WHERE a.id = $1", alert_id)
    return _alert(row) if row else None


async def list_for(
    conn: Conn,
    sites: list[str] | None,
    statuses: list[str] | None,
    coi: str | None,
    shipment_id: str | None,
    limit: int,
    courier: str | None = None,
) -> list[AlertRow]:
    """`courier`: a courier company whose assigned legs' alerts are listed besides those of `sites`."""
    rows = await conn.fetch(
        _SELECT  # noqa: S608 - constant text, values are parameters
        + """ WHERE ($1::text[] IS NULL OR a.sites && $1
                     OR a.shipment_id IN (SELECT id FROM shipments WHERE courier_organisation = $6))
              AND ($2::text[] IS NULL OR a.status = ANY($2))
              AND ($3::text IS NULL OR a.coi = $3) AND ($4::text IS NULL OR a.shipment_id = $4)
              ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, a.id DESC
              LIMIT $5""",
        sites,
        statuses,
        coi,
        shipment_id,
        limit,
        courier,
    )
    return [_alert(r) for r in rows]


async def acknowledge(
    conn: Conn,
    alert: AlertRow,
    *,
    user_id: int,
    username: str,
    full_name: str,
    comment: str,
    status_after: str,
) -> None:
    """Append to the alert's acknowledgement history and move it to `status_after`. The alert's own
    acknowledged_* columns keep the first acknowledgement: a later one never overwrites it."""
    await conn.execute(
        """INSERT INTO alert_acknowledgements
               (alert_id, user_id, username, full_name, comment, status_before, status_after, severity)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        alert.id,
        user_id,
        username,
        full_name,
        comment,
        alert.status,
        status_after,
        alert.severity,
    )
    await conn.execute(
        """UPDATE alerts SET status = $2, acknowledged_by = coalesce(acknowledged_by, $3),
                             acknowledged_at = coalesce(acknowledged_at, now()),
                             ack_comment = CASE WHEN acknowledged_at IS NULL THEN $4 ELSE ack_comment END
           WHERE id = $1""",
        alert.id,
        status_after,
        user_id,
        comment,
    )


async def close(conn: Conn, alert_id: int, user_id: int, reason: str) -> None:
    """A person's decision about the alert, not the end of its condition: `ended_at` stays what it was
    (the excursion's end, filled in by the engine once it ends) and `closed_at` says when this was."""
    await conn.execute(
        """UPDATE alerts SET status = 'closed', closed_by = $2, closed_at = now(), close_reason = $3
           WHERE id = $1""",
        alert_id,
        user_id,
        reason,
    )


async def resolve_condition(conn: Conn, condition_key: str, ended_at: datetime) -> int | None:
    """End the condition's alert: a critical one nobody acknowledged latches (cleared_unacknowledged)."""
    value = await conn.fetchval(
        """UPDATE alerts SET ended_at = $2,
                  status = CASE WHEN severity = 'critical' AND status = 'open' THEN 'cleared_unacknowledged'
                                ELSE 'resolved' END
           WHERE condition_key = $1 AND status IN ('open', 'acknowledged') RETURNING id""",
        condition_key,
        ended_at,
    )
    return int(value) if value is not None else None


async def unresolved_on_shipment(
    conn: Conn, shipment_id: str, kinds: list[str], severity: str
) -> list[tuple[int, str]]:
    """(id, title) of the shipment's alerts of these kinds and severity that are not resolved or closed:
    still active, acknowledged but active, or ended and not yet acknowledged."""
    rows = await conn.fetch(
        """SELECT id, title FROM alerts
           WHERE shipment_id = $1 AND kind = ANY($2::text[]) AND severity = $3
             AND status IN ('open', 'acknowledged', 'cleared_unacknowledged')
           ORDER BY id""",
        shipment_id,
        kinds,
        severity,
    )
    return [(r["id"], r["title"]) for r in rows]


async def carried_by(conn: Conn, alert: AlertRow, courier: str) -> bool:
    """Whether the alert is about a leg assigned to this courier company."""
    if alert.shipment_id is None:
        return False
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM shipments WHERE id = $1 AND courier_organisation = $2)",
            alert.shipment_id,
            courier,
        )
    )
