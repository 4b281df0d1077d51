"""Alert subscriptions of a site (webhook, e-mail), the delivery queue and its log, and the alert changes
the dispatcher has yet to put into that queue."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class SubscriptionRow(msgspec.Struct, frozen=True):
    id: int
    site: str
    channel: str
    target: str
    min_severity: str
    description: str
    active: bool
    created_by: str | None
    created_at: datetime
    deactivated_at: datetime | None


_SELECT = """
SELECT s.id, s.site, s.channel, s.target, s.min_severity, s.description, s.active,
       (SELECT username FROM users WHERE id = s.created_by) AS created_by, s.created_at, s.deactivated_at
FROM alert_subscriptions s
"""


async def create(
    conn: Conn,
    *,
    site: str,
    channel: str,
    target: str,
    secret: str | None,
    min_severity: str,
    description: str,
    created_by: int,
) -> SubscriptionRow:
    new_id = await conn.fetchval(
        """INSERT INTO alert_subscriptions (site, channel, target, secret, min_severity, description, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        site,
        channel,
        target,
        secret,
        min_severity,
        description,
        created_by,
    )
    row = await get(conn, int(new_id))
    assert row is not None
    return row


async def get(conn: Conn, subscription_id: int) -> SubscriptionRow | None:
    row = await conn.fetchrow(_SELECT + " WHERE s.id = $1", subscription_id)
    return SubscriptionRow(**row) if row else None


async def of_site(conn: Conn, site: str, include_inactive: bool) -> list[SubscriptionRow]:
    rows = await conn.fetch(
        _SELECT + " WHERE s.site = $1 AND (s.active OR $2) ORDER BY s.id", site, include_inactive
    )
    return [SubscriptionRow(**r) for r in rows]


async def deactivate(conn: Conn, subscription_id: int) -> None:
    """Stops it; deliveries still queued for it are cancelled, the ones made stay in the log."""
    await conn.execute(
        "UPDATE alert_subscriptions SET active = false, deactivated_at = now() WHERE id = $1 AND active",
        subscription_id,
    )
    await conn.execute(
        "UPDATE alert_deliveries SET status = 'cancelled' WHERE subscription_id = $1 AND status = 'pending'",
        subscription_id,
    )


class Attempt(msgspec.Struct, frozen=True):
    attempt: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryRow(msgspec.Struct, frozen=True):
    id: int
    alert_id: int
    event: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    log: list[Attempt] = []


async def deliveries(conn: Conn, subscription_id: int, limit: int) -> list[DeliveryRow]:
    rows = await conn.fetch(
        """SELECT d.id, d.alert_id, d.event, d.subject, d.status, d.attempts, d.next_attempt_at, d.last_error,
                  d.created_at, d.sent_at,
                  coalesce((SELECT jsonb_agg(jsonb_build_object(
                              'attempt', a.attempt, 'at', a.at, 'ok', a.ok, 'status_code', a.status_code,
                              'error', a.error, 'duration_ms', a.duration_ms) ORDER BY a.attempt)
                            FROM delivery_attempts a WHERE a.delivery_id = d.id), '[]'::jsonb) AS log
           FROM alert_deliveries d WHERE d.subscription_id = $1 ORDER BY d.id DESC LIMIT $2""",
        subscription_id,
        limit,
    )
    return [msgspec.convert(dict(r), DeliveryRow) for r in rows]


# -- dispatching alert changes into the queue ---------------------------------------------------------


class AlertChange(msgspec.Struct, frozen=True):
    id: int
    kind: str
    severity: str
    status: str
    notified_severity: str | None
    notified_status: str | None
    title: str
    detail: str
    sites: list[str]
    coi: str | None
    shipment_id: str | None
    logger_id: str | None
    started_at: datetime
    ended_at: datetime | None
    peak_value: float | None
    minutes_beyond: float | None
    acknowledged_at: datetime | None
    ack_comment: str | None
    close_reason: str | None


_CHANGE = """
SELECT id, kind, severity, status, notified_severity, notified_status, title, detail, sites, coi, shipment_id,
       logger_id, started_at, ended_at, peak_value, minutes_beyond, acknowledged_at, ack_comment, close_reason
FROM alerts
"""


async def undispatched(conn: Conn, limit: int) -> list[AlertChange]:
    """Alerts whose severity or status changed since subscribers were last told, locked (skipping those
    another replica is dispatching)."""
    rows = await conn.fetch(
        _CHANGE
        + """WHERE notified_status IS DISTINCT FROM status OR notified_severity IS DISTINCT FROM severity
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )
    return [AlertChange(**r) for r in rows]


async def due_reminders(
    conn: Conn, before: datetime, limit: int, acknowledged_before: datetime | None = None
) -> list[AlertChange]:
    """Critical alerts nobody acknowledged (active, or latched after their condition cleared), last
    announced (raised, escalated or reminded) before `before`; and, with `acknowledged_before`, critical
    alerts acknowledged while still active whose last acknowledgement, escalation or reminder is older."""
    rows = await conn.fetch(
        _CHANGE  # noqa: S608 - constant query text, values are bound
        + """WHERE severity = 'critical' AND status IN ('open', 'cleared_unacknowledged', 'acknowledged')
               AND CASE WHEN status = 'acknowledged' THEN
                        $3::timestamptz IS NOT NULL
                        AND greatest(coalesce(reminded_at, created_at), coalesce(escalated_at, created_at),
                                     coalesce((SELECT max(k.at) FROM alert_acknowledgements k
                                               WHERE k.alert_id = alerts.id), created_at)) < $3
                   ELSE greatest(coalesce(reminded_at, created_at), coalesce(escalated_at, created_at)) < $1
                   END
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED""",
        before,
        limit,
        acknowledged_before,
    )
    return [AlertChange(**r) for r in rows]


async def mark_notified(conn: Conn, alert_id: int, severity: str, status: str) -> None:
    await conn.execute(
        "UPDATE alerts SET notified_severity = $2, notified_status = $3 WHERE id = $1",
        alert_id,
        severity,
        status,
    )


async def mark_reminded(conn: Conn, alert_id: int, at: datetime) -> None:
    await conn.execute("UPDATE alerts SET reminded_at = $2 WHERE id = $1", alert_id, at)


class Target(msgspec.Struct, frozen=True):
    id: int
    site: str
    channel: str
    min_severity: str


async def targets(conn: Conn, sites: list[str]) -> list[Target]:
    rows = await conn.fetch(
        """SELECT id, site, channel, min_severity FROM alert_subscriptions
           WHERE active AND site = ANY($1) ORDER BY id""",
        sites,
    )
    return [Target(**r) for r in rows]


async def enqueue(
    conn: Conn, subscription_id: int, alert_id: int, event: str, subject: str, body: bytes
) -> None:
    await conn.execute(
        """INSERT INTO alert_deliveries (subscription_id, alert_id, event, subject, body)
           VALUES ($1, $2, $3, $4, $5)""",
        subscription_id,
        alert_id,
        event,
        subject,
        body,
    )


# -- sending ------------------------------------------------------------------------------------------


class Claimed(msgspec.Struct, frozen=True):
    id: int
    attempts: int
    event: str
    subject: str
    body: bytes
    channel: str
    target: str
    secret: str | None


async def claim(conn: Conn, limit: int, lease_seconds: float) -> list[Claimed]:
    """Due deliveries, each leased to this sender: `next_attempt_at` moves past the lease, so a sender that
    dies mid-send leaves the row to be retried after it (at least once)."""
    rows = await conn.fetch(
        """WITH due AS (
               SELECT id FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           UPDATE alert_deliveries d
              SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
             FROM due, alert_subscriptions s
            WHERE d.id = due.id AND s.id = d.subscription_id
           RETURNING d.id, d.attempts, d.event, d.subject, d.body, s.channel, s.target, s.secret""",
        limit,
        lease_seconds,
    )
    return [Claimed(**r) for r in rows]


async def record_attempt(
    conn: Conn,
    delivery_id: int,
    attempt: int,
    *,
    ok: bool,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    retry_in_seconds: float | None,
) -> None:
    """Logs the attempt; the delivery is sent, pending again after `retry_in_seconds`, or (None) failed."""
    await conn.execute(
        """INSERT INTO delivery_attempts (delivery_id, attempt, ok, status_code, error, duration_ms)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        delivery_id,
        attempt,
        ok,
        status_code,
        error,
        duration_ms,
    )
    await conn.execute(
        """UPDATE alert_deliveries
              SET status = CASE WHEN $2 THEN 'sent' WHEN $3::float8 IS NULL THEN 'failed' ELSE 'pending' END,
                  sent_at = CASE WHEN $2 THEN now() ELSE sent_at END,
                  next_attempt_at = CASE WHEN $3::float8 IS NULL THEN next_attempt_at
                                         ELSE now() + make_interval(secs => $3) END,
                  last_error = $4
            WHERE id = $1 AND status = 'pending'""",
        delivery_id,
        ok,
        retry_in_seconds,
        error,
    )
