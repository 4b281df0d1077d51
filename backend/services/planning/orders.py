"""Treatment orders: the treating site's coordinator orders a therapy for a case; the manufacturing site
accepts or declines it with an electronic signature, recorded as a custody event of the case. An accepted
order opens the case's plan (bookings: backend/services/planning/bookings.py)."""

from __future__ import annotations

from datetime import date

from backend.db.repo import audit
from backend.db.repo import planning as repo
from backend.db.repo.planning import OrderRow
from backend.db.types import Pool
from backend.domain.access import Principal, Role
from backend.domain.custody import Refusal
from backend.domain.errors import Conflict, InvalidInput
from backend.services import alerting, outbox_events, signing
from backend.services import chain as chains
from backend.services.planning import gate

COLLECTION_KINDS = ("apheresis", "hospital")
SIGNING_ROLES = frozenset({Role.MANUFACTURING})


async def create_order(
    pool: Pool,
    principal: Principal,
    coi: str,
    *,
    product: str,
    collection_site: str,
    manufacturing_site: str,
    mdt_reference: str,
    mdt_date: date,
    physician: str,
) -> OrderRow:
    async with pool.acquire() as conn, conn.transaction():
        case, live = await gate.case(conn, principal, coi, lock_order=True)
        gate.require_site(principal, [case.treatment_site], "Ordering a therapy for this case")
        if case.status != "open":
            raise Conflict(f"case {coi} is {case.status}; only an open case can be ordered for")
        if live is not None:
            raise Conflict(
                f"case {coi} already has a treatment order ({live.status}) from "
                f"{live.ordered_at:%Y-%m-%d}; it must be declined or withdrawn first"
            )
        if await repo.product(conn, product) is None:
            raise InvalidInput(f"no product {product!r}", field_errors={"product": "unknown"})
        if await repo.site_kind(conn, manufacturing_site) != "manufacturing":
            raise InvalidInput(
                f"{manufacturing_site} is not a manufacturing site",
                field_errors={"manufacturing_site": "not a manufacturing site"},
            )
        if await repo.site_kind(conn, collection_site) not in COLLECTION_KINDS:
            raise InvalidInput(
                f"{collection_site} does not collect (it is not an apheresis unit or hospital)",
                field_errors={"collection_site": "not a collection site"},
            )
        if mdt_date > chains.now().date():
            raise InvalidInput(
                "the multidisciplinary team decision cannot be dated in the future",
                field_errors={"mdt_date": "in the future"},
            )
        order_id = await repo.insert_order(
            conn,
            coi=coi,
            product=product,
            ordering_site=case.treatment_site,
            collection_site=collection_site,
            manufacturing_site=manufacturing_site,
            mdt_reference=mdt_reference,
            mdt_date=mdt_date,
            physician=physician,
            ordered_by=principal.user_id,
            at=chains.now(),
        )
        sites = [case.treatment_site, collection_site, manufacturing_site]
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action="create",
            entity="treatment_order",
            entity_id=str(order_id),
            new_value={
                "coi": coi,
                "product": product,
                "collection_site": collection_site,
                "manufacturing_site": manufacturing_site,
                "mdt_reference": mdt_reference,
                "mdt_date": mdt_date.isoformat(),
                "physician": physician,
            },
            sites=sites,
        )
        await outbox_events.announce(conn, "order", sites, coi, {"order_id": order_id, "status": "requested"})
        created = await repo.live_order(conn, coi)
    assert created is not None
    return created


async def decide(
    pool: Pool, principal: Principal, coi: str, *, accept: bool, password: str, reason: str | None
) -> OrderRow:
    """The manufacturing site's signed answer to a requested order."""
    if not accept and not (reason and reason.strip()):
        raise InvalidInput("a declined order needs a reason", field_errors={"reason": "required"})
    async with pool.acquire() as conn, conn.transaction():
        _case, order = await gate.case(conn, principal, coi, lock_order=True)
        if order is None:
            raise Conflict(f"case {coi} has no treatment order waiting for a decision")
        gate.require_site(principal, [order.manufacturing_site], "Accepting or declining this order")
        if order.status != "requested":
            raise Conflict(f"the order of case {coi} was already {order.status}")
        at = chains.now()
        meaning = "order accepted" if accept else "order declined"
        try:
            signature = await signing.sign(
                conn, principal.username, password, meaning, SIGNING_ROLES, at, order.manufacturing_site
            )
        except Refusal as refusal:
            raise InvalidInput(refusal.detail, field_errors={"password": "wrong"}) from None
        status = "accepted" if accept else "declined"
        appended = await chains.append(
            conn,
            await chains.lock(conn, coi),
            action="order_accepted" if accept else "order_declined",
            actor=principal,
            site=order.manufacturing_site,
            detail=f"{order.manufacturing_site} {status} the order for {order.product}"
            + (f": {reason}" if reason else ""),
            data={"order_id": order.id, "product": order.product, "reason": reason},
            signatures=[signature],
            server_time=at,
        )
        await repo.decide_order(conn, order.id, status, principal.user_id, at, reason, appended.event_id)
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action=status,
            entity="treatment_order",
            entity_id=str(order.id),
            old_value={"status": order.status},
            new_value={"status": status, "event_id": appended.event_id},
            reason=reason,
            sites=order.sites,
        )
        await outbox_events.announce(
            conn, "order", order.sites, coi, {"order_id": order.id, "status": status}
        )
        decided = await repo.orders_of_case(conn, coi)
    return next(o for o in decided if o.id == order.id)


async def withdraw(pool: Pool, principal: Principal, coi: str, reason: str) -> OrderRow:
    """The treatment site withdraws its live order (the patient no longer needs it); a booking it holds
    is cancelled in the same transaction, so its collection slot and manufacturing run are free again."""
    from backend.services.planning import bookings

    async with pool.acquire() as conn, conn.transaction():
        _case, order = await gate.case(conn, principal, coi, lock_order=True)
        if order is None:
            raise Conflict(f"case {coi} has no live treatment order to withdraw")
        gate.require_site(principal, [order.ordering_site], "Withdrawing this order")
        booking = await repo.active_booking(conn, coi, lock=True)
        at = chains.now()
        if booking is not None:
            await repo.end_booking(conn, booking.id, "cancelled", principal.user_id, at, reason)
            await alerting.resolve_alert(conn, f"booking-fit:{booking.id}")
            await bookings.resolve_risks(conn, coi)
        await repo.withdraw_order(conn, order.id, principal.user_id, at, reason)
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action="withdraw",
            entity="treatment_order",
            entity_id=str(order.id),
            old_value={"status": order.status, "booking_id": booking.id if booking else None},
            new_value={"status": "withdrawn"},
            reason=reason,
            sites=order.sites,
        )
        await outbox_events.announce(
            conn, "order", order.sites, coi, {"order_id": order.id, "status": "withdrawn"}
        )
        found = await repo.orders_of_case(conn, coi)
    return next(o for o in found if o.id == order.id)
