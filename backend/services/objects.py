"""The object gate: every command and query that names a record resolves it here, and nowhere else.

A record is visible to a person bound to one of the sites it concerns (administrators see all). Users of
a courier company or a client see by relation only (docs/organisations.md): a leg assigned to their
courier company and its alerts, a case made for their client; nothing through a site binding. A
manufacturer's manufacturing and QA people also see the cases made at any of its sites. One
that is not visible is answered exactly like one that does not exist — the same error, word for word —
because the existence of another site's case, bag or shipment is itself private, and ids are guessable.
Callers check their own rules (role, site of the step, state) only after the gate has let the object
through, so no refusal, chain entry or alert is ever written for an object the caller cannot see."""

from __future__ import annotations

from backend.db.repo import alerts, cases, events, organisations, shipments
from backend.db.repo.alerts import AlertRow
from backend.db.repo.cases import CaseRow, UnitRow
from backend.db.repo.events import HandoverRow
from backend.db.repo.shipments import ShipmentRow
from backend.db.types import Conn
from backend.domain.access import Principal
from backend.domain.errors import NotFound
from backend.epcis import jobs
from backend.services.visibility import site_filter


def sees_case(principal: Principal, case: CaseRow) -> bool:
    """By site; a client's users are let through by `_sees_case`, which reads their relation to the case."""
    return principal.sees(case.sites)


async def _sees_case(conn: Conn, principal: Principal, case: CaseRow) -> bool:
    if sees_case(principal, case):
        return True
    if principal.maker is not None:
        # "Made by": a manufacturer's makers see the cases of every manufacturing site it owns.
        made_at = await organisations.manufacturing_sites(conn, principal.maker, sorted(principal.sites))
        return not set(made_at).isdisjoint(case.sites)
    # Only a client's users are asked about: everyone else pays no second read.
    return principal.read_only and principal.is_client_of(await organisations.case_client(conn, case.coi))


def sees_shipment(principal: Principal, shipment: ShipmentRow) -> bool:
    # A leg concerns the two sites it joins; the rest of the case's sites have no business with it.
    return principal.sees((shipment.from_site, shipment.to_site)) or principal.carries(
        shipment.courier_organisation
    )


def sees_alert(principal: Principal, alert: AlertRow) -> bool:
    """By site; a courier company's users are let through by `_sees_alert` for the legs they carry."""
    return principal.sees(alert.sites)


async def _sees_alert(conn: Conn, principal: Principal, alert: AlertRow, acting: bool) -> bool:
    if sees_alert(principal, alert):
        return True
    # A courier company sees its legs' alerts; acting on them (acknowledging, closing) stays with the
    # people of the leg's sites, so an alert a caller acts on is let through by site only. A client's
    # users see no alert.
    courier = principal.courier_company
    return not acting and courier is not None and await alerts.carried_by(conn, alert, courier)


async def case(conn: Conn, principal: Principal, coi: str) -> CaseRow:
    found = await cases.get_case(conn, coi)
    if found is None or not await _sees_case(conn, principal, found):
        raise NotFound(f"no case with COI {coi}")
    return found


async def client_cases(conn: Conn, principal: Principal, limit: int) -> list[CaseRow]:
    """The cases made for the caller's client organisation, newest first (none for anyone else)."""
    if not principal.read_only or principal.organisation is None:
        return []
    found = [
        await cases.get_case(conn, coi)
        for coi in await organisations.client_cases(conn, principal.organisation, limit)
    ]
    return [c for c in found if c is not None]


async def case_sites(conn: Conn, principal: Principal) -> list[str] | None:
    """The sites whose cases a list shows the caller (None: all): theirs, and for a manufacturer's makers
    every manufacturing site of their organisation, as `_sees_case` decides for one case."""
    sites = site_filter(principal)
    if sites is None or principal.maker is None:
        return sites
    made_at = await organisations.manufacturing_sites(conn, principal.maker, sorted(principal.sites))
    return sorted({*sites, *made_at})


async def unit(conn: Conn, principal: Principal, unit_id: str) -> tuple[UnitRow, CaseRow]:
    """The unit and its case: a unit is visible when its case is."""
    found = await cases.get_unit(conn, unit_id)
    owner = await cases.get_case(conn, found.coi) if found is not None else None
    if found is None or owner is None or not await _sees_case(conn, principal, owner):
        raise NotFound(f"no unit {unit_id}")
    return found, owner


async def shipment(conn: Conn, principal: Principal, shipment_id: str, lock: bool = False) -> ShipmentRow:
    found = await shipments.get(conn, shipment_id, lock=lock)
    if found is None or not sees_shipment(principal, found):
        raise NotFound(f"no shipment {shipment_id}")
    return found


async def event(conn: Conn, principal: Principal, event_id: int) -> tuple[CaseRow, str]:
    """The case a custody event belongs to, and the event's action."""
    found = await events.event_case(conn, event_id)
    owner = await cases.get_case(conn, found[0]) if found is not None else None
    if found is None or owner is None or not await _sees_case(conn, principal, owner):
        raise NotFound(f"no custody event {event_id}")
    return owner, found[1]


async def alert(conn: Conn, principal: Principal, alert_id: int, lock: bool = False) -> AlertRow:
    """`lock`: the caller changes the alert (only those who may act on it get it)."""
    found = await alerts.get(conn, alert_id, lock=lock)
    if found is None or not await _sees_alert(conn, principal, found, acting=lock):
        raise NotFound(f"no alert {alert_id}")
    return found


async def handover(
    conn: Conn, principal: Principal, handover_id: int, lock: bool = False
) -> tuple[HandoverRow, ShipmentRow]:
    """A hand-over is visible to its receiver and to whoever sees its shipment."""
    found = await events.get_handover(conn, handover_id, lock=lock)
    leg = await shipments.get(conn, found.shipment_id) if found is not None else None
    if (
        found is None
        or leg is None
        or not (found.receiver_id == principal.user_id or sees_shipment(principal, leg))
    ):
        raise NotFound(f"no hand-over {handover_id}")
    return found, leg


async def capture_job(conn: Conn, principal: Principal, job_id: str) -> jobs.CaptureJob:
    """An EPCIS capture job is visible to its submitter and to the sites they were bound to when it was
    sent."""
    found = await jobs.get(conn, job_id)
    if found is None or not (found.submitted_by == principal.user_id or principal.sees(found.sites)):
        raise NotFound(f"no capture job {job_id}")
    return found
