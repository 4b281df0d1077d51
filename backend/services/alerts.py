"""What people do with alerts: list those of their sites, acknowledge (an append-only history) and close
with a reason. The alarm states and their transitions are backend/domain/alarm_states.py; every change is
checked, written, announced on the live stream and written to the audit trail in one transaction, under
the alert's row lock, and returned as the alert after the change."""

from __future__ import annotations

from backend.db.repo import alerts, audit
from backend.db.repo.alerts import AlertRow
from backend.db.types import Pool
from backend.domain import alarm_states
from backend.domain.access import Principal
from backend.services import objects, outbox_events
from backend.services.visibility import site_filter


async def list_alerts(
    pool: Pool,
    principal: Principal,
    statuses: list[str] | None,
    coi: str | None,
    shipment_id: str | None,
    limit: int,
) -> list[AlertRow]:
    """Alerts at the caller's sites (every alert for a caller bound to all), critical first."""
    async with pool.acquire() as conn:
        return await alerts.list_for(
            conn, site_filter(principal), statuses, coi, shipment_id, limit, principal.courier_company
        )


async def acknowledge(pool: Pool, principal: Principal, alert_id: int, comment: str) -> AlertRow:
    """Acknowledge an active or latched alert; acknowledging again adds to the history."""
    async with pool.acquire() as conn, conn.transaction():
        alert = await objects.alert(conn, principal, alert_id, lock=True)
        after = alarm_states.when_acknowledged(alert_id, alert.status)
        await alerts.acknowledge(
            conn,
            alert,
            user_id=principal.user_id,
            username=principal.username,
            full_name=principal.full_name,
            comment=comment,
            status_after=after,
        )
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action="acknowledge",
            entity="alert",
            entity_id=str(alert_id),
            old_value={"status": alert.status, "severity": alert.severity},
            new_value={"status": after, "severity": alert.severity, "comment": comment},
            reason=comment,
            sites=alert.sites,
        )
        await outbox_events.announce(
            conn,
            "alert",
            alert.sites,
            alert.coi,
            {"id": alert_id, "status": after, "status_before": alert.status, "by": principal.full_name},
        )
        changed = await alerts.get(conn, alert_id)
    assert changed is not None
    return changed


async def close(pool: Pool, principal: Principal, alert_id: int, reason: str) -> AlertRow:
    """Close (shelve) an alert with a reason: active, or latched and not yet acknowledged."""
    async with pool.acquire() as conn, conn.transaction():
        alert = await objects.alert(conn, principal, alert_id, lock=True)
        alarm_states.check_closable(alert_id, alert.status)
        await alerts.close(conn, alert_id, principal.user_id, reason)
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action="close",
            entity="alert",
            entity_id=str(alert_id),
            old_value={"status": alert.status, "severity": alert.severity},
            new_value={"status": alarm_states.CLOSED, "severity": alert.severity},
            reason=reason,
            sites=alert.sites,
        )
        await outbox_events.announce(
            conn,
            "alert",
            alert.sites,
            alert.coi,
            {"id": alert_id, "status": alarm_states.CLOSED, "by": principal.full_name},
        )
        changed = await alerts.get(conn, alert_id)
    assert changed is not None
    return changed
