"""The object gate: every command and query that names a record resolves it here, and nowhere else.

A record is visible to a person bound to one of the sites it concerns (administrators see all). One
that is not visible is answered exactly like one that does not exist — the same error, word for word —
because the existence of another site's case, bag or shipment is itself private, and ids are guessable.
Callers check their own rules (role, site of the step, state) only after the gate has let the object
through, so no refusal, chain entry or alert is ever written for an object the caller cannot see."""

from __future__ import annotations

from backend.db.repo import alerts, cases, events, shipments
from backend.db.repo.alerts import AlertRow
from backend.db.repo.cases import CaseRow, UnitRow
from backend.db.repo.events import HandoverRow
from backend.db.repo.shipments import ShipmentRow
from backend.db.types import Conn
from backend.domain.access import Principal
from backend.domain.errors import NotFound
from backend.epcis import jobs


def sees_case(principal: Principal, case: CaseRow) -> bool:
    return principal.sees(case.sites)


def sees_shipment(principal: Principal, shipment: ShipmentRow) -> bool:
    # A leg concerns the two sites it joins; the rest of the case's sites have no business with it.
    return principal.sees((shipment.from_site, shipment.to_site))


def sees_alert(principal: Principal, alert: AlertRow) -> bool:
    return principal.sees(alert.sites)


async def case(conn: Conn, principal: Principal, coi: str) -> CaseRow:
    found = await cases.get_case(conn, coi)
    if found is None or not sees_case(principal, found):
        raise NotFound(f"no case with COI {coi}")
    return found


async def unit(conn: Conn, principal: Principal, unit_id: str) -> tuple[UnitRow, CaseRow]:
    """The unit and its case: a unit is visible when its case is."""
    found = await cases.get_unit(conn, unit_id)
    owner = await cases.get_case(conn, found.coi) if found is not None else None
    if found is None or owner is None or not sees_case(principal, owner):
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
    if found is None or owner is None or not sees_case(principal, owner):
        raise NotFound(f"no custody event {event_id}")
    return owner, found[1]


async def alert(conn: Conn, principal: Principal, alert_id: int, lock: bool = False) -> AlertRow:
    found = await alerts.get(conn, alert_id, lock=lock)
    if found is None or not sees_alert(principal, found):
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
