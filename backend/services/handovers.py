"""Hand-overs between couriers: the receiver confirms taking custody, and housekeeping alerts on every
hand-over not confirmed in time."""

from __future__ import annotations

from backend.db.repo import cases, events, shipments
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.domain.errors import Conflict, PermissionDenied
from backend.services import chain as chains
from backend.services import objects, security_log
from backend.services.alerting import raise_alert, resolve_alert
from backend.services.outbox_events import announce


async def confirm_handover(pool: Pool, actor: Principal, handover_id: int) -> chains.Appended:
    try:
        return await _confirm_handover(pool, actor, handover_id)
    except _NotTheReceiver as refused:
        await security_log.refused(
            pool,
            actor,
            action="handover_confirmation_refused",
            entity="handover",
            entity_id=str(handover_id),
            why="not the named receiver",
            what={"shipment_id": refused.shipment_id},
        )
        raise PermissionDenied("only the named receiver can confirm this hand-over") from None


class _NotTheReceiver(Exception):
    def __init__(self, shipment_id: str) -> None:
        self.shipment_id = shipment_id


async def _confirm_handover(pool: Pool, actor: Principal, handover_id: int) -> chains.Appended:
    async with pool.acquire() as conn, conn.transaction():
        _unlocked, shipment = await objects.handover(conn, actor, handover_id)
        chain = await chains.lock(conn, shipment.coi)
        handover, _leg = await objects.handover(conn, actor, handover_id, lock=True)
        if handover.receiver_id != actor.user_id:
            raise _NotTheReceiver(shipment.id)
        if handover.confirmed_at is not None:
            raise Conflict(f"hand-over {handover_id} was confirmed at {handover.confirmed_at.isoformat()}")
        appended = await chains.append(
            conn,
            chain,
            action="handover_confirm",
            actor=actor,
            site=handover.site,
            shipment_id=shipment.id,
            unit_ids=shipment.manifest,
            counterpart_id=handover.giver_id,
            detail=f"{actor.full_name} confirmed taking custody of {shipment.id}",
            data={"handover_id": handover_id},
        )
        await events.confirm_handover(conn, handover_id, appended.event_id)
        await shipments.set_holder(conn, shipment.id, actor.user_id)
        await cases.move_units(conn, shipment.manifest, None, actor.user_id)
        await resolve_alert(conn, f"handover:{handover_id}")
        await announce(
            conn,
            "event",
            [shipment.from_site, shipment.to_site],
            shipment.coi,
            {"event_id": appended.event_id, "action": "handover_confirm", "shipment_id": shipment.id},
        )
    return appended


async def alert_overdue_handovers(pool: Pool) -> int:
    """Housekeeping: one alert per hand-over not confirmed in time (safe with several replicas)."""
    raised = 0
    async with pool.acquire() as conn, conn.transaction():
        for row in await events.overdue_handovers(conn):
            alert_id = await raise_alert(
                conn,
                kind="unconfirmed_handover",
                severity="warning",
                title=f"Hand-over of {row['shipment_id']} not confirmed",
                detail=f"{row['giver']} handed {row['shipment_id']} to {row['receiver']} at {row['site']}; "
                f"no confirmation since {row['due_at'].isoformat()}",
                condition_key=f"handover:{row['id']}",
                sites=[row["from_site"], row["to_site"], row["site"]],
                coi=row["coi"],
                shipment_id=row["shipment_id"],
            )
            raised += alert_id is not None
    return raised
