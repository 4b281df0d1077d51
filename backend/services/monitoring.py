"""Periodic checks no reading triggers: loggers gone silent, shipments late, legs whose evaluation was
left undone, then alert delivery (queue, reminders, sending). `run_periodic_checks` is one tick of the
backend's housekeeping loop; every step is idempotent and safe with several replicas ticking at once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from backend.db.repo import excursions as repo
from backend.db.repo.excursions import NewAlert
from backend.db.types import Pool
from backend.services import excursions, housekeeping, ledger, notify
from backend.services.excursion_alerts import condition_key
from backend.settings import Settings

log = logging.getLogger(__name__)

LATE = "shipment_late"


async def check_silent(pool: Pool, settings: Settings, now: datetime) -> int:
    """Raise `logger_silent` for legs under way without data for the set minutes; end those whose data
    came back or whose leg was received; close those silent past the maximum (the logger is lost)."""
    raised = 0
    since = now - timedelta(minutes=settings.logger_silent_minutes)
    async with pool.acquire() as conn, conn.transaction():
        for leg in await repo.silent_legs(conn, since):
            minutes = (now - leg.last_data).total_seconds() / 60
            sites = [leg.from_site, leg.to_site]
            alert_id = await repo.insert_alert(
                conn,
                NewAlert(
                    kind=excursions.SILENT,
                    severity="warning",
                    status="open",
                    title=f"Shipment {leg.shipment_id}: logger {leg.logger_id} silent",
                    detail=f"no data from logger {leg.logger_id} since {leg.last_data.isoformat()} "
                    f"({minutes:.0f} min; the limit is {settings.logger_silent_minutes:g} min)",
                    condition_key=condition_key(excursions.SILENT, leg.shipment_id),
                    sites=sites,
                    coi=leg.coi,
                    shipment_id=leg.shipment_id,
                    logger_id=leg.logger_id,
                    started_at=leg.last_data,
                    ended_at=None,
                    fired_at=now,
                    rule={"logger_silent_minutes": settings.logger_silent_minutes},
                ),
            )
            if alert_id is not None:
                raised += 1
                await ledger.announce(
                    conn,
                    "alert",
                    sites,
                    leg.coi,
                    {
                        "id": alert_id,
                        "event": "opened",
                        "alert_kind": excursions.SILENT,
                        "severity": "warning",
                        "title": f"Shipment {leg.shipment_id}: logger {leg.logger_id} silent",
                        "status": "open",
                        "shipment_id": leg.shipment_id,
                        "logger_id": leg.logger_id,
                    },
                )
        lost_before = now - timedelta(hours=settings.logger_silent_max_hours)
        for alert in await repo.open_of_kind(conn, excursions.SILENT):
            if (
                alert.received_at is None
                and alert.started_at < lost_before
                and not (alert.last_data is not None and alert.last_data > alert.started_at)
            ):
                reason = (
                    f"closed automatically: no data for more than {settings.logger_silent_max_hours:g} h, "
                    "the logger is taken as lost"
                )
                await repo.close_automatically(conn, alert.id, reason)
                await ledger.announce(
                    conn,
                    "alert",
                    alert.sites,
                    alert.coi,
                    {
                        "id": alert.id,
                        "event": "closed",
                        "alert_kind": excursions.SILENT,
                        "status": "closed",
                        "reason": reason,
                        "shipment_id": alert.shipment_id,
                    },
                )
    await excursions.end_silences(pool, None)
    return raised


async def check_late(pool: Pool, settings: Settings, now: datetime) -> int:
    raised = 0
    async with pool.acquire() as conn, conn.transaction():
        for leg in await repo.late_legs(conn, now - timedelta(minutes=settings.shipment_late_minutes)):
            sites = [leg.from_site, leg.to_site]
            title = f"Shipment {leg.shipment_id} is late"
            alert_id = await repo.insert_alert(
                conn,
                NewAlert(
                    kind=LATE,
                    severity="warning",
                    status="open",
                    title=title,
                    detail=f"planned to arrive at {leg.planned_arrival.isoformat()}; not arrived yet",
                    condition_key=condition_key(LATE, leg.shipment_id),
                    sites=sites,
                    coi=leg.coi,
                    shipment_id=leg.shipment_id,
                    logger_id=leg.logger_id,
                    started_at=leg.planned_arrival,
                    ended_at=None,
                    fired_at=now,
                    rule={"shipment_late_minutes": settings.shipment_late_minutes},
                ),
            )
            if alert_id is not None:
                raised += 1
                await ledger.announce(
                    conn,
                    "alert",
                    sites,
                    leg.coi,
                    {
                        "id": alert_id,
                        "event": "opened",
                        "alert_kind": LATE,
                        "severity": "warning",
                        "title": title,
                        "status": "open",
                        "shipment_id": leg.shipment_id,
                    },
                )
        for alert in await repo.open_of_kind(conn, LATE):
            ended = alert.arrived_at or alert.received_at
            if ended is None and alert.shipment_status != "cancelled":
                continue
            await repo.resolve(conn, alert.id, ended or now)
            await ledger.announce(
                conn,
                "alert",
                alert.sites,
                alert.coi,
                {
                    "id": alert.id,
                    "event": "resolved",
                    "alert_kind": LATE,
                    "status": "resolved",
                    "shipment_id": alert.shipment_id,
                },
            )
    return raised


async def run_periodic_checks(pool: Pool, settings: Settings, now: datetime | None = None) -> None:
    """One housekeeping tick. A failing step is logged and the others still run."""
    at = now or ledger.now()
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
