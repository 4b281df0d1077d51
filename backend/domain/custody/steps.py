"""One rule per custody step, in a table (`STEPS`): each takes the scan and returns the change it makes,
or raises the Refusal that says why not. `decide` runs the checks every step shares, then the step's rule.
The refusals each rule may raise are listed in docs/custody.md ("The rule table")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from backend.domain import samples
from backend.domain.custody.checks import (
    check_manifest,
    check_open,
    check_same_case,
    check_times,
    need_shipment,
    need_site,
    need_status,
    need_units,
)
from backend.domain.custody.model import FINAL_UNIT_STATES, Action, Change, Refusal, ShipmentState, UnitState
from backend.domain.statuses import CaseStatus, ShipmentStatus, UnitStatus


class Scan(msgspec.Struct, frozen=True):
    """What one scan names, as `decide` received it."""

    action: Action
    site: str
    actor_id: int
    shipment: ShipmentState | None
    units: list[UnitState]
    wristband_coi: str | None = None
    handover_to: int | None = None


Rule = Callable[[Scan], Change]


def _ids(units: list[UnitState]) -> str:
    return ", ".join(u.id for u in units)


def _each(units: list[UnitState], status: UnitStatus) -> dict[str, str]:
    return {u.id: status for u in units}


def _each_ready(scan: Scan, allowed: set[str], doing: str) -> None:
    """Each unit of a step taken where the units are: in an allowed status and scanned at its site."""
    for unit in scan.units:
        need_status(unit, allowed, scan.action)
        need_site(scan.site, unit.site, f"{doing} {unit.id}")


def label(scan: Scan) -> Change:
    need_units(scan.action, scan.units)
    _each_ready(scan, {UnitStatus.CREATED}, "labelling")
    return Change(f"labelled {_ids(scan.units)}", unit_status=_each(scan.units, UnitStatus.LABELLED))


def pack(scan: Scan) -> Change:
    ship = need_shipment(scan.action, scan.shipment)
    need_units(scan.action, scan.units)
    if ship.status not in (ShipmentStatus.PLANNED, ShipmentStatus.PACKING):
        raise Refusal("out_of_order", f"shipment {ship.id} is {ship.status}; units can no longer be packed")
    need_site(scan.site, ship.from_site, f"packing shipment {ship.id}")
    check_manifest(ship, scan.units)
    for unit in scan.units:
        need_status(unit, {UnitStatus.LABELLED, UnitStatus.RECEIVED, UnitStatus.STORED}, scan.action)
        if unit.kind == "PRC" and not unit.released:
            raise Refusal("not_released", f"product bag {unit.id} has no QA release; it cannot be shipped")
        if unit.quarantined:
            raise Refusal("quarantined", f"unit {unit.id} is quarantined; it cannot be shipped")
    packed = ship.packed | {u.id for u in scan.units}
    return Change(
        f"packed {_ids(scan.units)} into {ship.id}",
        unit_status=_each(scan.units, UnitStatus.PACKED),
        shipment_status=ShipmentStatus.PACKED if packed >= ship.manifest else ShipmentStatus.PACKING,
        packed=packed,
    )


def pickup(scan: Scan) -> Change:
    ship = need_shipment(scan.action, scan.shipment)
    if ship.status != ShipmentStatus.PACKED:
        missing = sorted(ship.manifest - ship.packed)
        hint = f" (not yet packed: {', '.join(missing)})" if missing else ""
        raise Refusal("out_of_order", f"shipment {ship.id} is {ship.status}; pick-up needs it packed{hint}")
    need_site(scan.site, ship.from_site, f"pick-up of {ship.id}")
    return Change(
        f"picked up {ship.id}",
        unit_status={u: UnitStatus.IN_TRANSIT for u in ship.manifest},
        shipment_status=ShipmentStatus.IN_TRANSIT,
        take_custody=True,
    )


def handover(scan: Scan) -> Change:
    ship = need_shipment(scan.action, scan.shipment)
    if ship.status != ShipmentStatus.IN_TRANSIT:
        raise Refusal(
            "out_of_order",
            f"shipment {ship.id} is {ship.status}; only a shipment in transit is "
            "handed over between couriers",
        )
    if ship.holder_id != scan.actor_id:
        raise Refusal("not_holder", f"you do not hold shipment {ship.id}; only its holder can hand it over")
    if ship.open_handover:
        raise Refusal("out_of_order", f"a hand-over of {ship.id} is waiting for confirmation")
    if scan.handover_to is None:
        raise Refusal("unknown_item", "a hand-over names the receiver (handover_to)")
    if scan.handover_to == scan.actor_id:
        raise Refusal("same_person", "you cannot hand a shipment over to yourself")
    return Change(f"handed over {ship.id}; waiting for the receiver to confirm")


def receive(scan: Scan) -> Change:
    """The shipment scanned alone is its arrival; its units scanned after it are checked off one by one."""
    ship = need_shipment(scan.action, scan.shipment)
    need_site(scan.site, ship.to_site, f"receipt of {ship.id}")
    if not scan.units:
        if ship.status != ShipmentStatus.IN_TRANSIT:
            raise Refusal("out_of_order", f"shipment {ship.id} is {ship.status}; it cannot be received now")
        return Change(
            f"{ship.id} arrived; scan each unit, then accept or quarantine",
            shipment_status=ShipmentStatus.ARRIVED,
            take_custody=True,
        )
    if ship.status != ShipmentStatus.ARRIVED:
        raise Refusal("out_of_order", f"scan shipment {ship.id} itself first (it is {ship.status})")
    check_manifest(ship, scan.units)
    scanned = ship.receipt_scanned | {u.id for u in scan.units}
    left = len(ship.manifest - scanned)
    return Change(
        f"verified {_ids(scan.units)}; {left} expected unit(s) still to scan", receipt_scanned=scanned
    )


def store(scan: Scan) -> Change:
    need_units(scan.action, scan.units)
    for unit in scan.units:
        allowed = {UnitStatus.RECEIVED, UnitStatus.STORED, *samples.STORE_FROM.get(unit.kind, ())}
        need_status(unit, allowed, scan.action)
        need_site(scan.site, unit.site, f"storing {unit.id}")
        if unit.quarantined:
            raise Refusal("quarantined", f"unit {unit.id} is quarantined; store it only after QA decides")
    return Change(f"stored {_ids(scan.units)}", unit_status=_each(scan.units, UnitStatus.STORED))


def dispense(scan: Scan) -> Change:
    need_units(scan.action, scan.units)
    _each_ready(scan, {UnitStatus.STORED}, "dispensing")
    return Change(f"dispensed {_ids(scan.units)}", unit_status=_each(scan.units, UnitStatus.DISPENSED))


def thaw(scan: Scan) -> Change:
    need_units(scan.action, scan.units)
    _each_ready(scan, {UnitStatus.DISPENSED}, "thawing")
    return Change(f"thaw started for {_ids(scan.units)}", unit_status=_each(scan.units, UnitStatus.THAWED))


def infuse(scan: Scan) -> Change:
    need_units(scan.action, scan.units)
    if scan.wristband_coi is None:
        raise Refusal("wristband_required", "scan the patient's wristband together with the bag")
    _each_ready(scan, {UnitStatus.THAWED}, "infusing")
    return Change(
        f"infused {_ids(scan.units)}; wristband and bag match",
        unit_status=_each(scan.units, UnitStatus.INFUSED),
    )


def dispose(scan: Scan) -> Change:
    need_units(scan.action, scan.units)
    for unit in scan.units:
        if unit.status in FINAL_UNIT_STATES:
            raise Refusal("out_of_order", f"unit {unit.id} is already {unit.status}")
    return Change(f"disposed {_ids(scan.units)}", unit_status=_each(scan.units, UnitStatus.DISPOSED))


# Every step's rule; a new Action without a row here fails the unit tests (test_custody_refusals_table).
STEPS: dict[Action, Rule] = {
    Action.LABEL: label,
    Action.PACK: pack,
    Action.PICKUP: pickup,
    Action.HANDOVER: handover,
    Action.RECEIVE: receive,
    Action.STORE: store,
    Action.DISPENSE: dispense,
    Action.THAW: thaw,
    Action.INFUSE: infuse,
    Action.DISPOSE: dispose,
}


def decide(
    action: Action,
    *,
    site: str,
    actor_id: int,
    shipment: ShipmentState | None,
    units: list[UnitState],
    wristband_coi: str | None = None,
    handover_to: int | None = None,
    now: datetime | None = None,
    case_status: str = CaseStatus.OPEN,
) -> Change:
    """`now`: the step's time, for a unit's expiry and a bag's thaw window (None: not checked, for tests
    of the order of steps alone). `case_status`: a completed or cancelled case takes no custody step but
    disposal of what is left (`CLOSED_CASE_ACTIONS`)."""
    check_same_case(shipment, units, wristband_coi)
    check_open(case_status, action)
    if now is not None:
        check_times(action, units, now)
    return STEPS[action](Scan(action, site, actor_id, shipment, units, wristband_coi, handover_to))
