"""Periodic checks no reading triggers: loggers gone silent, shipments late, legs whose evaluation was
left undone, then alert delivery (queue, reminders, sending). `run_periodic_checks` is one tick of the
backend's housekeeping loop; every step is idempotent and safe with several replicas ticking at once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from backend.db.repo import excursions as repo
from backend.db.repo import monitoring as checks
from backend.db.repo.excursions import NewAlert
from backend.db.types import Conn, Pool
from backend.services import chain as chains
from backend.services import excursions, housekeeping, notify, outbox_events
from backend.services.excursion_alerts import condition_key
from backend.settings import Settings

log = logging.getLogger(__name__)

LATE = "shipment_late"


async def _raise_leg_alert(
    conn: Conn,
    leg: Any,
    kind: str,
    title: str,
    detail: str,
    started_at: datetime,
    now: datetime,
    rule: dict[str, Any],
) -> bool:
    """Open a periodic check's warning on a leg, once per condition, and announce it. False when that
    condition's alert was already open."""
    sites = [leg.from_site, leg.to_site]
    alert_id = await repo.insert_alert(
        conn,
        NewAlert(
            kind=kind,
            severity="warning",
            status="open",
            title=title,
            detail=detail,
            condition_key=condition_key(kind, leg.shipment_id),
            sites=sites,
            coi=leg.coi,
            shipment_id=leg.shipment_id,
            logger_id=leg.logger_id,
            started_at=started_at,
            ended_at=None,
            fired_at=now,
            rule=rule,
        ),
    )
    if alert_id is None:
        return False
    payload = {
        "id": alert_id,
        "event": "opened",
        "alert_kind": kind,
        "severity": "warning",
        "title": title,
        "status": "open",
        "shipment_id": leg.shipment_id,
    }
    # A silent logger's alert names the logger; a late shipment's is about the shipment.
    if kind == excursions.SILENT:
        payload["logger_id"] = leg.logger_id
    await outbox_events.announce(conn, "alert", sites, leg.coi, payload)
    return True


async def _announce_ended(conn: Conn, alert: Any, kind: str, status: str, reason: str | None = None) -> None:
    payload: dict[str, Any] = {"id": alert.id, "event": status, "alert_kind": kind, "status": status}
    if reason is not None:
        payload["reason"] = reason
    payload["shipment_id"] = alert.shipment_id
    await outbox_events.announce(conn, "alert", alert.sites, alert.coi, payload)


async def check_silent(pool: Pool, settings: Settings, now: datetime) -> int:
    """Raise `logger_silent` for legs under way without data for the set minutes; end those whose data
    came back or whose leg was received; close those silent past the maximum (the logger is lost)."""
    raised = 0
    since = now - timedelta(minutes=settings.logger_silent_minutes)
    async with pool.acquire() as conn, conn.transaction():
        for leg in await checks.silent_legs(conn, since):
            minutes = (now - leg.last_data).total_seconds() / 60
            raised += await _raise_leg_alert(
                conn,
                leg,
                excursions.SILENT,
                f"Shipment {leg.shipment_id}: logger {leg.logger_id} silent",
                f"no data from logger {leg.logger_id} since {leg.last_data.isoformat()} "
                f"({minutes:.0f} min; the limit is {settings.logger_silent_minutes:g} min)",
                leg.last_data,
                now,
                {"logger_silent_minutes": settings.logger_silent_minutes},
            )
        lost_before = now - timedelta(hours=settings.logger_silent_max_hours)
        for alert in await checks.open_of_kind(conn, excursions.SILENT):
            if (
                alert.received_at is None
                and alert.started_at < lost_before
                and not (alert.last_data is not None and alert.last_data > alert.started_at)
            ):
                reason = (
                    f"closed automatically: no data for more than {settings.logger_silent_max_hours:g} h, "
                    "the logger is taken as lost"
                )
                await checks.close_automatically(conn, alert.id, reason)
                await _announce_ended(conn, alert, excursions.SILENT, "closed", reason)
    await excursions.end_silences(pool, None)
    return raised


async def check_late(pool: Pool, settings: Settings, now: datetime) -> int:
    raised = 0
    async with pool.acquire() as conn, conn.transaction():
        for leg in await checks.late_legs(conn, now - timedelta(minutes=settings.shipment_late_minutes)):
            raised += await _raise_leg_alert(
                conn,
                leg,
                LATE,
                f"Shipment {leg.shipment_id} is late",
                f"planned to arrive at {leg.planned_arrival.isoformat()}; not arrived yet",
                leg.planned_arrival,
                now,
                {"shipment_late_minutes": settings.shipment_late_minutes},
            )
        for alert in await checks.open_of_kind(conn, LATE):
            ended = alert.arrived_at or alert.received_at
            if ended is None and alert.shipment_status != "cancelled":
                continue
            await repo.resolve(conn, alert.id, ended or now)
            await _announce_ended(conn, alert, LATE, "resolved")
    return raised


async def run_periodic_checks(pool: Pool, settings: Settings, now: datetime | None = None) -> None:
    """One housekeeping tick. A failing step is logged and the others still run."""
    at = now or chains.now()
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("excursion sweep", lambda: excursions.sweep(pool)),
        ("logger silent", lambda: check_silent(pool, settings, at)),
        ("shipment late", lambda: check_late(pool, settings, at)),
        ("alert dispatch", lambda: notify.dispatch(pool)),
        (
            "alert reminders",
            lambda: notify.remind(
                pool,
                settings.alert_reminder_minutes,
                at,
                acknowledged_every_minutes=settings.alert_acknowledged_reminder_minutes,
            ),
        ),
        ("alert delivery", lambda: notify.deliver_due(pool, settings)),
        ("readings partitions", lambda: housekeeping.ensure_readings_partitions(pool)),
    ]
    for name, step in steps:
        try:
            await step()
        except Exception:
            log.exception("periodic check failed; next tick retries", extra={"check": name})
