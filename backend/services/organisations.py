"""Organisations (docs/organisations.md): who owns which sites and users, which courier company carries a
leg, which client a case is made for. What each relation lets a user see is the object gate's
(`backend.services.objects`) and the lists' (`backend.services.visibility`)."""

from __future__ import annotations

from backend.db.repo import audit, organisations, shipments, users
from backend.db.repo.organisations import OrganisationRow
from backend.db.repo.shipments import ShipmentRow
from backend.db.types import Conn, Pool
from backend.domain.access import OrganisationKind, Principal, Role
from backend.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from backend.services import chain as chains
from backend.services import objects, outbox_events
from backend.services.cases import parse_coi_value

# A leg that has arrived, been received or been cancelled has nothing left to carry.
_FINISHED = frozenset({"arrived", "received", "quarantined", "cancelled"})
# Who names a leg's courier company or a case's client: those who plan the legs and the case.
PLANNERS = frozenset({Role.COORDINATOR, Role.MANUFACTURING})
# The custody event of a courier assignment (not a scan: it moves nothing, it says who may carry).
COURIER_ASSIGNED = "courier_assigned"


async def create(
    pool: Pool, actor: Principal | None, code: str, name: str, kind: OrganisationKind
) -> OrganisationRow:
    async with pool.acquire() as conn, conn.transaction():
        if not await organisations.insert(conn, code, name, kind.value):
            raise Conflict(f"an organisation with code {code} exists", field_errors={"code": "taken"})
        await _audit(conn, actor, "create", "organisation", code, {"name": name, "kind": kind.value})
        created = await organisations.get(conn, code)
    assert created is not None
    return created


async def list_all(pool: Pool) -> list[OrganisationRow]:
    async with pool.acquire() as conn:
        return await organisations.list_all(conn)


async def _known(conn: Conn, code: str | None, field: str = "organisation") -> OrganisationRow | None:
    if code is None:
        return None
    found = await organisations.get(conn, code)
    if found is None:
        raise InvalidInput(f"unknown organisation {code}", field_errors={field: "unknown"})
    return found


async def set_site_organisation(
    pool: Pool, actor: Principal | None, site: str, code: str | None
) -> OrganisationRow | None:
    async with pool.acquire() as conn, conn.transaction():
        exists, before = await organisations.site_organisation(conn, site)
        if not exists:
            raise NotFound(f"no site with code {site}")
        found = await _known(conn, code)
        if before == code:
            return found  # nothing changes, and the trail records no change
        await organisations.set_site_organisation(conn, site, code)
        await _audit(conn, actor, "update", "site", site, {"organisation": code}, {"organisation": before})
    return found


async def set_user_organisation(
    pool: Pool, actor: Principal | None, username: str, code: str | None
) -> OrganisationRow | None:
    async with pool.acquire() as conn, conn.transaction():
        user = await users.by_username(conn, username)
        if user is None:
            raise NotFound(f"no user named {username}")
        found = await _known(conn, code)
        if user.organisation == code:
            return found
        await users.set_organisation(conn, user.id, code)
        # Their next request is answered by the new organisation's rule: the principal is read per request.
        await _audit(
            conn,
            actor,
            "update",
            "user",
            username,
            {"organisation": code},
            {"organisation": user.organisation},
        )
    return found


async def assign_courier(
    pool: Pool, actor: Principal, shipment_id: str, code: str | None, reason: str
) -> ShipmentRow:
    """Hand a leg to a courier company (or take it back), by a planner bound to one of its two sites."""
    async with pool.acquire() as conn, conn.transaction():
        # The case's chain first, then the leg: the order every scan takes its locks in.
        seen = await objects.shipment(conn, actor, shipment_id)
        chain = await chains.lock(conn, seen.coi)
        leg = await objects.shipment(conn, actor, shipment_id, lock=True)
        if not (actor.at_site(leg.from_site) or actor.at_site(leg.to_site)):
            raise PermissionDenied(f"you are assigned to neither {leg.from_site} nor {leg.to_site}")
        if leg.status in _FINISHED:
            raise Conflict(f"shipment {shipment_id} is {leg.status}: its carrier can no longer change")
        await record_courier(conn, actor, leg, code, reason, chain)
        updated = await shipments.get(conn, shipment_id)
    assert updated is not None
    return updated


async def record_courier(
    conn: Conn, actor: Principal, leg: ShipmentRow, code: str | None, reason: str, chain: chains.LockedChain
) -> None:
    """The one record of a courier assignment, from the route or with the leg's plan: the organisation
    must be a courier company; the change is audited and, being a fact of custody (who may carry and scan
    the leg), appended to the case's chain with its reason. Once the leg is picked up its carrier changes
    only with the goods: while the current holder hands them over to someone of the new carrier.
    The caller has let the leg through the object gate and holds its case's chain (`chain`), then the leg."""
    if not actor.has_any(PLANNERS):
        raise PermissionDenied("a leg's courier company is named by a coordinator or manufacturing")
    found = await _known(conn, code)
    if found is not None and found.kind != OrganisationKind.COURIER:
        raise InvalidInput(
            f"{code} is a {found.kind}, not a courier company", field_errors={"organisation": "not a courier"}
        )
    if code == leg.courier_organisation:
        return  # nothing changes, and neither the trail nor the chain records a change
    if leg.holder_id is not None:
        await _handed_over(conn, leg, code)
    await shipments.set_courier(conn, leg.id, code)
    await audit.record(
        conn,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="assign_courier",
        entity="shipment",
        entity_id=leg.id,
        old_value={"courier_organisation": leg.courier_organisation},
        new_value={"courier_organisation": code},
        reason=reason,
        sites=[leg.from_site, leg.to_site],
    )
    site = leg.from_site if actor.at_site(leg.from_site) else leg.to_site
    carrier = code or "no courier company"
    appended = await chains.append(
        conn,
        chain,
        action=COURIER_ASSIGNED,
        actor=actor,
        site=site,
        shipment_id=leg.id,
        detail=f"shipment {leg.id} assigned to {carrier}: {reason}",
        data={"organisation": code, "before": leg.courier_organisation, "reason": reason},
    )
    await outbox_events.announce(
        conn,
        "event",
        [leg.from_site, leg.to_site],
        leg.coi,
        {"event_id": appended.event_id, "action": COURIER_ASSIGNED, "shipment_id": leg.id},
    )


async def _handed_over(conn: Conn, leg: ShipmentRow, code: str | None) -> None:
    """After pick-up: refused unless the current holder is handing the leg to a user of `code` (of no
    company when `code` is None), whose confirmation then finds the leg in their company's hands."""
    receiver = await users.by_username(conn, leg.open_handover_to) if leg.open_handover_to else None
    if receiver is None or receiver.organisation != code:
        holder = leg.holder_name or "its courier"
        raise Conflict(
            f"shipment {leg.id} was picked up and is with {holder}: its courier company changes only "
            f"while {holder} hands it over to someone of {code or 'no courier company'} "
            "(a hand-over scan naming them), not before",
            field_errors={"organisation": "picked up"},
        )


def client_of_kind(found: OrganisationRow | None, code: str) -> OrganisationRow:
    if found is None or found.kind != OrganisationKind.CLIENT:
        kind = found.kind if found is not None else "unknown organisation"
        raise InvalidInput(f"{code} is a {kind}, not a client", field_errors={"organisation": "not a client"})
    return found


async def set_case_client(pool: Pool, actor: Principal, coi_text: str, code: str) -> OrganisationRow:
    """Name the client a case is made for. Once only: a case's client decides who may follow it, and moving
    a product from one client to another is not a correction but a different order."""
    coi = parse_coi_value(coi_text)
    async with pool.acquire() as conn, conn.transaction():
        case = await objects.case(conn, actor, coi)
        if not any(actor.at_site(site) for site in case.sites):
            raise PermissionDenied(f"you are assigned to none of case {coi}'s sites")
        found = await record_client(conn, actor, coi, code, case.sites)
    return found


async def record_client(
    conn: Conn, actor: Principal, coi: str, code: str, sites: list[str]
) -> OrganisationRow:
    """The one record of a case's client, from the route or with the case's creation."""
    found = client_of_kind(await _known(conn, code), code)
    before = await organisations.lock_case_client(conn, coi)
    if before is not None:
        raise Conflict(f"case {coi} is already made for client {before}")
    await organisations.set_case_client(conn, coi, code)
    await audit.record(
        conn,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="set_client",
        entity="case",
        entity_id=coi,
        new_value={"client_organisation": code},
        sites=sites,
    )
    return found


async def case_client(pool: Pool, actor: Principal, coi_text: str) -> str | None:
    coi = parse_coi_value(coi_text)
    async with pool.acquire() as conn:
        await objects.case(conn, actor, coi)
        return await organisations.case_client(conn, coi)


async def _audit(
    conn: Conn,
    actor: Principal | None,
    action: str,
    entity: str,
    entity_id: str,
    new_value: object,
    old_value: object = None,
) -> None:
    # No actor: the demo seed, named "system" like the other seeded records.
    await audit.record(
        conn,
        actor_id=actor.user_id if actor else None,
        actor_name=actor.username if actor else "system",
        action=action,
        entity=entity,
        entity_id=entity_id,
        old_value=old_value,
        new_value=new_value,
    )
