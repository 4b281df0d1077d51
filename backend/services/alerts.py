"""What people do with alerts: list those of their sites, acknowledge (an append-only history) and close
with a reason. The alarm states and their transitions are backend/domain/alarm_states.py; every change is
checked, written, announced on the live stream and written to the audit trail in one transaction, under
the alert's row lock, and returned as the alert after the change."""

from __future__ import annotations

from typing import Any

from backend.db.repo import alerts, audit
from backend.db.repo.alerts import AlertRow
from backend.db.types import Conn, Pool
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
        return await _recorded(
            conn,
            principal,
            alert,
            ("acknowledge", after, comment),
            audited={"comment": comment},
            announced={"status_before": alert.status},
        )


async def close(pool: Pool, principal: Principal, alert_id: int, reason: str) -> AlertRow:
    """Close (shelve) an alert with a reason: active, or latched and not yet acknowledged."""
    async with pool.acquire() as conn, conn.transaction():
        alert = await objects.alert(conn, principal, alert_id, lock=True)
        alarm_states.check_closable(alert_id, alert.status)
        await alerts.close(conn, alert_id, principal.user_id, reason)
        return await _recorded(conn, principal, alert, ("close", alarm_states.CLOSED, reason))


async def _recorded(
    conn: Conn,
    principal: Principal,
    alert: AlertRow,
    change: tuple[str, str, str],
    *,
    audited: dict[str, Any] | None = None,
    announced: dict[str, Any] | None = None,
) -> AlertRow:
    """The audit entry and the live announcement of `change` (action, status after, reason), in the
    change's transaction; the alert as it is now."""
    action, after, reason = change
    await audit.record(
        conn,
        actor_id=principal.user_id,
        actor_name=principal.username,
        action=action,
        entity="alert",
        entity_id=str(alert.id),
        old_value={"status": alert.status, "severity": alert.severity},
        new_value={"status": after, "severity": alert.severity, **(audited or {})},
        reason=reason,
        sites=alert.sites,
    )
    payload = {"id": alert.id, "status": after, **(announced or {}), "by": principal.full_name}
    await outbox_events.announce(conn, "alert", alert.sites, alert.coi, payload)
    changed = await alerts.get(conn, alert.id)
    assert changed is not None
    return changed
