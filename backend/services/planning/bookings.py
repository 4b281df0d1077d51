"""Booking a collection slot for an accepted order, which reserves the matching manufacturing run;
rescheduling and cancelling, which free it; the case's plan against the custody record; and the
housekeeping check that raises an alert for each milestone at risk.

Locks are always taken in the same order — the case's live order, then the collection slot, then the
manufacturing site's capacity rows — so concurrent bookings queue up instead of deadlocking, and the
last free run goes to exactly one of them. Unique indexes (migration 0030) stand behind the locks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from backend.db.repo import audit
from backend.db.repo import planning as repo
from backend.db.repo.planning import BookingRow, OrderRow
from backend.db.types import Conn, Pool
from backend.domain.access import Principal, Role
from backend.domain.errors import Conflict, InvalidInput
from backend.services import alerting, outbox_events
from backend.services import chain as chains
from backend.services.planning import capacity, gate, milestones
from backend.services.planning.milestones import MilestoneView

ALERT_KIND = "milestone_at_risk"


def _zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name or "UTC")


async def _accepted_order(conn: Conn, principal: Principal, coi: str) -> OrderRow:
    _case, order = await gate.case(conn, principal, coi, lock_order=True)
    if order is None or order.status != "accepted":
        latest = order or next(iter(await repo.orders_of_case(conn, coi)), None)
        state = "no treatment order" if latest is None else f"an order that is {latest.status}"
        raise Conflict(f"case {coi} has {state}; collections are booked for accepted orders")
    gate.require_site(principal, [order.ordering_site, order.collection_site], "Booking the collection")
    return order


async def reserve(conn: Conn, principal: Principal, order: OrderRow, slot_id: int, at: datetime) -> int:
    slot = await repo.lock_slot(conn, slot_id)
    if slot is None or slot.site != order.collection_site:
        raise InvalidInput(
            f"no apheresis slot {slot_id} at {order.collection_site}", field_errors={"slot_id": "unknown"}
        )
    if await repo.slot_taken(conn, slot.id):
        zone_name = await repo.site_zone(conn, slot.site)
        raise Conflict(f"the slot at {_local(slot.starts_at, zone_name)} ({zone_name}) is already booked")
    if slot.starts_at <= at:
        raise Conflict("the slot has already begun; choose a later one")
    lead = await repo.product(conn, order.product)
    assert lead is not None
    zone = await repo.site_zone(conn, order.manufacturing_site) or "UTC"
    start, end = milestones.run_days(slot.starts_at, lead, zone)
    locked = await repo.lock_capacity(conn, order.manufacturing_site)
    taken = await repo.site_bookings(conn, order.manufacturing_site, start - timedelta(days=120), end)
    dark = await repo.blackouts(conn, order.manufacturing_site, start, end)
    suite, why = capacity.fit(locked, order.product, order.manufacturing_site, start, end, dark, taken)
    if suite is None:
        here = await repo.site_zone(conn, slot.site)
        raise Conflict(f"no manufacturing run for a collection at {_local(slot.starts_at, here)}: {why}")
    try:
        booking_id = await repo.insert_booking(
            conn,
            order_id=order.id,
            coi=order.coi,
            slot_id=slot.id,
            manufacturing_site=order.manufacturing_site,
            product=order.product,
            suite=suite,
            start=start,
            end=end,
            booked_by=principal.user_id,
            at=at,
        )
    except asyncpg.UniqueViolationError:
        # Only reachable if a writer bypassed the locks; the answer is the same as theirs.
        raise Conflict(
            "the slot or the manufacturing run was booked at the same moment; choose again"
        ) from None
    plan = milestones.planned(slot.starts_at, lead)
    await repo.insert_milestones(conn, booking_id, order.coi, list(plan.items()))
    return booking_id


def _local(at: datetime, zone: str | None) -> str:
    return at.astimezone(_zone(zone)).strftime("%Y-%m-%d %H:%M")


async def book(pool: Pool, principal: Principal, coi: str, slot_id: int) -> BookingRow:
    async with pool.acquire() as conn, conn.transaction():
        order = await _accepted_order(conn, principal, coi)
        if await repo.active_booking(conn, coi, lock=True) is not None:
            raise Conflict(f"case {coi} is already booked; reschedule or cancel that booking")
        at = chains.now()
        booking_id = await reserve(conn, principal, order, slot_id, at)
        await _audit(conn, principal, "book", booking_id, order, {"slot_id": slot_id}, None)
        booked = await repo.active_booking(conn, coi)
    assert booked is not None
    return booked


async def reschedule(pool: Pool, principal: Principal, coi: str, slot_id: int, reason: str) -> BookingRow:
    """Moves the booking to another slot in one transaction: the old run is freed before the new one is
    sought, so a booking may move within its own capacity; if nothing fits, the old one stays."""
    async with pool.acquire() as conn, conn.transaction():
        order = await _accepted_order(conn, principal, coi)
        current = await repo.active_booking(conn, coi, lock=True)
        if current is None:
            raise Conflict(f"case {coi} has no booking to reschedule")
        at = chains.now()
        await repo.end_booking(conn, current.id, "rescheduled", principal.user_id, at, reason)
        await alerting.resolve_alert(conn, f"booking-fit:{current.id}")
        booking_id = await reserve(conn, principal, order, slot_id, at)
        await _audit(
            conn,
            principal,
            "reschedule",
            booking_id,
            order,
            {"slot_id": slot_id, "replaces": current.id},
            reason,
        )
        await resolve_risks(conn, coi)
        booked = await repo.active_booking(conn, coi)
    assert booked is not None
    return booked


async def cancel(pool: Pool, principal: Principal, coi: str, reason: str) -> BookingRow:
    async with pool.acquire() as conn, conn.transaction():
        _case, order = await gate.case(conn, principal, coi, lock_order=True)
        current = await repo.active_booking(conn, coi, lock=True)
        if order is None or current is None:
            raise Conflict(f"case {coi} has no booking to cancel")
        gate.require_site(
            principal, [order.ordering_site, order.collection_site], "Cancelling the collection"
        )
        await repo.end_booking(conn, current.id, "cancelled", principal.user_id, chains.now(), reason)
        await alerting.resolve_alert(conn, f"booking-fit:{current.id}")
        await resolve_risks(conn, coi)
        await _audit(conn, principal, "cancel", current.id, order, None, reason)
    return msgspec.structs.replace(current, status="cancelled")


async def _audit(
    conn: Conn,
    principal: Principal,
    action: str,
    booking_id: int,
    order: OrderRow,
    value: dict[str, Any] | None,
    reason: str | None,
) -> None:
    await audit.record(
        conn,
        actor_id=principal.user_id,
        actor_name=principal.username,
        action=action,
        entity="booking",
        entity_id=str(booking_id),
        new_value={"coi": order.coi, **(value or {})},
        reason=reason,
        sites=order.sites,
    )
    await outbox_events.announce(
        conn, "booking", order.sites, order.coi, {"booking_id": booking_id, "action": action}
    )


async def resolve_risks(conn: Conn, coi: str) -> None:
    for name in milestones.MILESTONES:
        await alerting.resolve_alert(conn, f"milestone:{coi}:{name}")


# ---------------------------------------------------------------------------------------------- views


class SlotChoice(msgspec.Struct, frozen=True):
    id: int
    starts_at: datetime
    ends_at: datetime
    manufacturing_start: date
    suite: str | None
    fits: bool
    why_not: str


async def choices(
    pool: Pool, principal: Principal, coi: str, start: date, days: int
) -> tuple[str, list[SlotChoice]]:
    """The order's collection site's free slots, each with whether its manufacturing run fits now."""
    async with pool.acquire() as conn:
        _case, order = await gate.case(conn, principal, coi)
        if order is None or order.status != "accepted":
            raise Conflict(f"case {coi} has no accepted treatment order; slots are offered once it has")
        lead = await repo.product(conn, order.product)
        assert lead is not None
        zone = await repo.site_zone(conn, order.collection_site) or "UTC"
        mfg_zone = await repo.site_zone(conn, order.manufacturing_site) or "UTC"
        begin = max(datetime.combine(start, datetime.min.time(), _zone(zone)), datetime.now(UTC))
        slots = [
            s
            for s in await repo.slots(
                conn, order.collection_site, begin, begin + timedelta(days=min(days, 62))
            )
            if s.booked_coi is None
        ]
        runs = [milestones.run_days(s.starts_at, lead, mfg_zone) for s in slots]
        cap = await repo.capacity(conn, order.manufacturing_site)
        last = max((r[1] for r in runs), default=start)
        taken = await repo.site_bookings(conn, order.manufacturing_site, start - timedelta(days=120), last)
        taken = [b for b in taken if b.coi != coi]
        dark = await repo.blackouts(conn, order.manufacturing_site, start, last)
    out = []
    for slot, (run_start, run_end) in zip(slots, runs, strict=True):
        suite, why = capacity.fit(
            cap, order.product, order.manufacturing_site, run_start, run_end, dark, taken
        )
        out.append(
            SlotChoice(slot.id, slot.starts_at, slot.ends_at, run_start, suite, suite is not None, why)
        )
    return zone, out


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    coi: str
    order: OrderRow | None
    booking: BookingRow | None
    milestones: list[MilestoneView]
    time_zones: dict[str, str]
    slack_hours: int | None
    can_order: bool
    can_decide: bool
    can_book: bool
    can_withdraw: bool


async def plan(pool: Pool, principal: Principal, coi: str, now: datetime | None = None) -> Plan:
    now = now or datetime.now(UTC)
    async with pool.acquire() as conn:
        case, order = await gate.case(conn, principal, coi)
        # Without a live order the plan shows the case's latest one.
        shown = order if order is not None else await _last_order(conn, coi)
        booking = await repo.active_booking(conn, coi)
        planned = await repo.milestones(conn, booking.id) if booking else {}
        lead = await repo.product(conn, shown.product) if shown else None
        steps = milestones.steps_of(await repo.custody_steps(conn, [coi]))
        aph = (await repo.apheresis_units(conn, [coi])).get(coi, set())
        sites = [case.treatment_site, *(shown.sites if shown else [])]
        zones = {s: await repo.site_zone(conn, s) or "UTC" for s in dict.fromkeys(sites)}
    done = milestones.actual(steps, aph, shown.manufacturing_site if shown else None)
    slack_hours = lead.slack_h if lead else None
    can_order, can_decide, can_withdraw, can_book = _permissions(principal, case.treatment_site, order)
    return Plan(
        coi=coi,
        order=shown,
        booking=booking,
        milestones=milestones.view(planned, done, timedelta(hours=slack_hours or 0), now),
        time_zones=zones,
        slack_hours=slack_hours,
        can_order=can_order,
        can_decide=can_decide,
        can_withdraw=can_withdraw,
        can_book=can_book,
    )


async def _last_order(conn: Conn, coi: str) -> OrderRow | None:
    previous = await repo.orders_of_case(conn, coi)
    return previous[0] if previous else None


def _permissions(
    principal: Principal, treatment_site: str, order: OrderRow | None
) -> tuple[bool, bool, bool, bool]:
    """What the principal may do next: order (no live order), decide, withdraw, book."""
    if order is None:
        return principal.at_site(treatment_site) and principal.has_any(_COORD), False, False, False
    return False, _can_decide(principal, order), _can_withdraw(principal, order), _can_book(principal, order)


def _can_decide(principal: Principal, order: OrderRow) -> bool:
    """The manufacturing site accepts or refuses a requested order."""
    return (
        order.status == "requested"
        and principal.at_site(order.manufacturing_site)
        and principal.has_any(_MFG)
    )


def _can_withdraw(principal: Principal, order: OrderRow) -> bool:
    return principal.at_site(order.ordering_site) and principal.has_any(_COORD)


def _can_book(principal: Principal, order: OrderRow) -> bool:
    """An accepted order's collection is booked by a coordinator of the ordering or collection site."""
    return (
        order.status == "accepted"
        and principal.has_any(_COORD)
        and (principal.at_site(order.ordering_site) or principal.at_site(order.collection_site))
    )


_COORD = frozenset({Role.COORDINATOR})
_MFG = frozenset({Role.MANUFACTURING})


# --------------------------------------------------------------------------------------- housekeeping


async def check_milestones(pool: Pool, now: datetime | None = None) -> int:
    """Raise a warning alert for each milestone whose predecessor is late beyond the product's slack,
    and resolve those no longer at risk. Returns how many are at risk."""
    now = now or datetime.now(UTC)
    risky_total = 0
    async with pool.acquire() as conn, conn.transaction():
        cases = await repo.planned_cases(conn)
        cois = [c["coi"] for c in cases]
        steps: dict[str, list[Any]] = {}
        for row in await repo.custody_steps(conn, cois):
            steps.setdefault(row["coi"], []).append(row)
        aph = await repo.apheresis_units(conn, cois)
        open_keys = await alerts_open_for(conn, "milestone:")
        for case in cases:
            coi = case["coi"]
            planned = await repo.milestones(conn, case["booking_id"])
            done = milestones.actual(
                milestones.steps_of(steps.get(coi, [])), aph.get(coi, set()), case["manufacturing_site"]
            )
            risky = milestones.at_risk(planned, done, timedelta(hours=case["slack_h"]), now)
            risky_total += len(risky)
            sites = list(
                dict.fromkeys([case["ordering_site"], case["collection_site"], case["manufacturing_site"]])
            )
            for name in milestones.MILESTONES:
                key = f"milestone:{coi}:{name}"
                if name in risky:
                    label = milestones.LABELS[name]
                    await alerting.raise_alert(
                        conn,
                        kind=ALERT_KIND,
                        severity="warning",
                        title=f"{label} of {coi} at risk",
                        detail=f"{risky[name]}; {label.lower()} was planned for "
                        f"{_local(planned[name], case['time_zone'])} ({case['time_zone']})",
                        condition_key=key,
                        sites=sites,
                        coi=coi,
                        rule={"milestone": name, "slack_hours": case["slack_h"]},
                    )
                elif key in open_keys:
                    await alerting.resolve_alert(conn, key)
    return risky_total


async def alerts_open_for(conn: Conn, prefix: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT condition_key FROM alerts WHERE status IN ('open', 'acknowledged') AND condition_key LIKE $1",
        prefix + "%",
    )
    return {r["condition_key"] for r in rows}
