"""Alert delivery to site subscriptions: signed webhooks and e-mail, at least once, never on the ingest
path. `dispatch` turns alert changes into queued deliveries (one transaction with the "told" marks, so a
change is queued exactly once whoever raised the alert); `remind` re-queues critical alerts nobody
acknowledged; `deliver_due` sends what is due and logs every attempt, retrying with exponential backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import smtplib
import ssl
import time
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Final

import asyncpg
import httpx
import msgspec

from backend.db.repo import audit
from backend.db.repo import subscriptions as repo
from backend.db.repo.subscriptions import AlertChange, Claimed, DeliveryRow, SubscriptionRow
from backend.db.types import Conn, Pool
from backend.domain.access import Principal
from backend.domain.addresses import AllowList
from backend.domain.errors import InvalidInput, NotFound
from backend.domain.excursions.profiles import SEVERITY_RANK
from backend.services import chain as chains
from backend.services import outbox_events, webhook_targets
from backend.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Celltrail-Signature"
EVENT_HEADER: Final = "X-Celltrail-Event"
DELIVERY_HEADER: Final = "X-Celltrail-Delivery"
# E-mail is for people: what needs doing or is done, not every acknowledgement.
EMAIL_EVENTS: Final = frozenset({"opened", "escalated", "reminder", "resolved", "closed"})
MAX_BACKOFF_SECONDS: Final = 3600.0
_json: Final = msgspec.json.Encoder()


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes with the subscription's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def change_event(alert: AlertChange) -> str:
    if alert.notified_status is None:
        return "opened"
    if SEVERITY_RANK[alert.severity] > SEVERITY_RANK.get(alert.notified_severity or "info", 0):
        return "escalated"
    if alert.status != alert.notified_status:
        return alert.status
    return "updated"


def backoff_seconds(base: float, attempts: int) -> float:
    return min(base * 2.0 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def _body(alert: AlertChange, event: str, site: str) -> bytes:
    return _json.encode(
        {
            "event": event,
            "event_id": str(uuid.uuid4()),
            "site": site,
            "at": chains.now(),
            "alert": msgspec.structs.asdict(alert) | {"notified_severity": None, "notified_status": None},
        }
    )


def _subject(alert: AlertChange, event: str) -> str:
    return f"[Celltrail] {alert.severity.upper()} {event}: {alert.title}"


def _email_text(alert: AlertChange, event: str) -> str:
    lines = [
        f"{alert.title}",
        "",
        f"Event: {event}",
        f"Severity: {alert.severity}    Status: {alert.status}",
        f"Case (COI): {alert.coi or '-'}    Shipment: {alert.shipment_id or '-'}",
        f"Logger: {alert.logger_id or '-'}",
        f"Started: {alert.started_at.isoformat()}",
        f"Ended: {alert.ended_at.isoformat() if alert.ended_at else '-'}",
        f"Peak: {alert.peak_value if alert.peak_value is not None else '-'}",
        "",
        alert.detail,
        "",
        f"Alert {alert.id}: acknowledge it in Celltrail.",
    ]
    return "\n".join(lines)


async def _enqueue_for(conn: Conn, alert: AlertChange, event: str) -> int:
    queued = 0
    for target in await repo.targets(conn, alert.sites):
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[target.min_severity]:
            continue
        if target.channel == "email":
            if event not in EMAIL_EVENTS:
                continue
            body = _email_text(alert, event).encode()
        else:
            body = _body(alert, event, target.site)
        await repo.enqueue(conn, target.id, alert.id, event, _subject(alert, event), body)
        queued += 1
    return queued


async def dispatch(pool: Pool, batch: int = 200) -> int:
    """Queue a delivery per matching subscription for every alert change not yet told; returns how many."""
    queued = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            changes = await repo.undispatched(conn, batch)
            for alert in changes:
                queued += await _enqueue_for(conn, alert, change_event(alert))
                await repo.mark_notified(conn, alert.id, alert.severity, alert.status)
        if len(changes) < batch:
            return queued


async def remind(
    pool: Pool,
    every_minutes: float,
    now: datetime | None = None,
    batch: int = 200,
    acknowledged_every_minutes: float | None = None,
) -> int:
    """Critical alerts still unacknowledged `every_minutes` after they were raised, escalated or last
    reminded, latched ones included; with `acknowledged_every_minutes`, critical alerts acknowledged but
    still active that long after the last acknowledgement, escalation or reminder: deliver again and say
    so on the live stream."""
    at = now or chains.now()
    reminded = 0
    acknowledged_before = (
        at - timedelta(minutes=acknowledged_every_minutes) if acknowledged_every_minutes is not None else None
    )
    async with pool.acquire() as conn, conn.transaction():
        for alert in await repo.due_reminders(
            conn, at - timedelta(minutes=every_minutes), batch, acknowledged_before
        ):
            await _enqueue_for(conn, alert, "reminder")
            await repo.mark_reminded(conn, alert.id, at)
            await outbox_events.announce(
                conn,
                "alert",
                alert.sites,
                alert.coi,
                {
                    "id": alert.id,
                    "event": "reminder",
                    "alert_kind": alert.kind,
                    "severity": alert.severity,
                    "title": alert.title,
                    "status": alert.status,
                    "shipment_id": alert.shipment_id,
                },
            )
            reminded += 1
    return reminded


class Outcome(msgspec.Struct, frozen=True):
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


async def _webhook(client: httpx.AsyncClient, item: Claimed, allow: AllowList, timeout: float) -> Outcome:
    started = time.perf_counter()
    try:
        pinned = await webhook_targets.pin(item.target, allow, timeout)
    except webhook_targets.Refused as refused:
        return Outcome(False, None, f"not sent: {refused}", (time.perf_counter() - started) * 1000)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Celltrail-Alerts/1",
        "Host": pinned.host_header,
        EVENT_HEADER: item.event,
        DELIVERY_HEADER: str(item.id),
        SIGNATURE_HEADER: sign(item.secret or "", item.body),
    }
    try:
        response = await client.post(
            pinned.url,
            content=item.body,
            headers=headers,
            extensions={"sni_hostname": pinned.sni_hostname},
        )
    except httpx.HTTPError as exc:
        # The delivery log (which the subscriber reads) gets the kind of failure only: a message can quote
        # what the target sent (a protocol error shows the first bytes of a non-HTTP service's banner).
        log.warning(
            "webhook not delivered", extra={"delivery": item.id, "error": f"{type(exc).__name__}: {exc}"}
        )
        return Outcome(False, None, type(exc).__name__, (time.perf_counter() - started) * 1000)
    ok = 200 <= response.status_code < 300
    # The status code only, never the body: what a target answers is not shown to the subscriber.
    error = None if ok else f"HTTP {response.status_code}"
    return Outcome(ok, response.status_code, error, (time.perf_counter() - started) * 1000)


def _send_mail(settings: Settings, item: Claimed) -> None:
    assert settings.smtp_host is not None
    message = EmailMessage()
    message["Subject"] = item.subject
    message["From"] = settings.smtp_from
    message["To"] = item.target
    message["X-Celltrail-Delivery"] = str(item.id)
    message.set_content(item.body.decode())
    smtp: smtplib.SMTP
    if settings.smtp_tls == "tls":
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=settings.smtp_timeout_seconds,
            context=ssl.create_default_context(),
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds)
    with smtp:
        if settings.smtp_tls == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


async def _email(settings: Settings, item: Claimed) -> Outcome:
    started = time.perf_counter()
    if settings.smtp_host is None:
        return Outcome(False, None, "no SMTP server configured (CELLTRAIL_SMTP_HOST)", 0.0)
    try:
        await asyncio.to_thread(_send_mail, settings, item)
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(
            False, None, f"{type(exc).__name__}: {exc}"[:500], (time.perf_counter() - started) * 1000
        )
    return Outcome(True, None, None, (time.perf_counter() - started) * 1000)


async def deliver_due(pool: Pool, settings: Settings, batch: int = 50) -> int:
    """Send every due delivery (batch by batch), log each attempt; returns how many were sent."""
    lease = 3 * max(settings.webhook_timeout_seconds, settings.smtp_timeout_seconds) + 10
    sent = 0
    allow = webhook_targets.allow_list(settings)
    timeout = settings.webhook_timeout_seconds
    # No redirects (a public target could send the request on to a private one) and no proxies from the
    # environment (the address checked must be the address connected to).
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        while True:
            async with pool.acquire() as conn:
                claimed = await repo.claim(conn, batch, lease)
            if not claimed:
                return sent
            outcomes = await asyncio.gather(
                *(
                    _webhook(client, c, allow, timeout) if c.channel == "webhook" else _email(settings, c)
                    for c in claimed
                )
            )
            async with pool.acquire() as conn, conn.transaction():
                for item, outcome in zip(claimed, outcomes, strict=True):
                    retry = None
                    if not outcome.ok and item.attempts < settings.delivery_max_attempts:
                        retry = backoff_seconds(settings.delivery_retry_base_seconds, item.attempts)
                    if not outcome.ok:
                        log.warning(
                            "alert delivery failed",
                            extra={"delivery": item.id, "attempt": item.attempts, "error": outcome.error},
                        )
                    await repo.record_attempt(
                        conn,
                        item.id,
                        item.attempts,
                        ok=outcome.ok,
                        status_code=outcome.status_code,
                        error=outcome.error,
                        duration_ms=outcome.duration_ms,
                        retry_in_seconds=retry,
                    )
                    sent += outcome.ok
            if len(claimed) < batch:
                return sent


# -- managing a site's subscriptions -----------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CreatedSubscription(msgspec.Struct, frozen=True):
    subscription: SubscriptionRow
    # Shown once, at creation: receivers verify X-Celltrail-Signature with it.
    secret: str | None


async def _check_target(channel: str, target: str, allow: AllowList) -> None:
    if channel == "webhook":
        await webhook_targets.check_subscription_target(target, allow)
    elif not _EMAIL.match(target):
        raise InvalidInput("an e-mail target is one address", field_errors={"target": "address"})


async def create_subscription(
    pool: Pool,
    actor: Principal,
    site: str,
    channel: str,
    target: str,
    min_severity: str,
    description: str,
    allow: AllowList,
) -> CreatedSubscription:
    await _check_target(channel, target, allow)
    secret = secrets.token_urlsafe(32) if channel == "webhook" else None
    async with pool.acquire() as conn, conn.transaction():
        try:
            row = await repo.create(
                conn,
                site=site,
                channel=channel,
                target=target,
                secret=secret,
                min_severity=min_severity,
                description=description,
                created_by=actor.user_id,
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"no site {site}") from None
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="create",
            entity="alert_subscription",
            entity_id=str(row.id),
            new_value={"site": site, "channel": channel, "target": target, "min_severity": min_severity},
        )
    return CreatedSubscription(row, secret)


async def _of_site(conn: Conn, site: str, subscription_id: int) -> SubscriptionRow:
    row = await repo.get(conn, subscription_id)
    if row is None or row.site != site:
        raise NotFound(f"no subscription {subscription_id} at site {site}")
    return row


async def list_subscriptions(pool: Pool, site: str, include_inactive: bool) -> list[SubscriptionRow]:
    async with pool.acquire() as conn:
        return await repo.of_site(conn, site, include_inactive)


async def deactivate_subscription(
    pool: Pool, actor: Principal, site: str, subscription_id: int
) -> SubscriptionRow:
    async with pool.acquire() as conn, conn.transaction():
        row = await _of_site(conn, site, subscription_id)
        await repo.deactivate(conn, subscription_id)
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="deactivate",
            entity="alert_subscription",
            entity_id=str(subscription_id),
            old_value={"active": row.active},
            new_value={"active": False},
        )
        changed = await repo.get(conn, subscription_id)
    assert changed is not None
    return changed


async def delivery_log(pool: Pool, site: str, subscription_id: int, limit: int) -> list[DeliveryRow]:
    async with pool.acquire() as conn:
        await _of_site(conn, site, subscription_id)
        return await repo.deliveries(conn, subscription_id, limit)
