"""State from the record: the unit, shipment and case states a custody chain implies, replayed event by
event with the effects the state machine (backend/domain/custody/) gave each accepted step. The tables
hold the same states for speed; where they differ from the record, the tables were changed without an
event (or the record was), and verification says so with both states.

Pure: it receives the events in chain order and returns the derived states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from backend.domain.chain import EventRecord
from backend.domain.custody import FINAL_UNIT_STATES, Action
from backend.domain.statuses import CaseStatus, ShipmentStatus, UnitStatus

# The unit status an accepted step leaves every unit it names in (custody.decide and receipt_decision).
UNIT_STATUS_OF_ACTION: dict[str, str] = {
    "unit_registered": "created",
    Action.LABEL.value: "labelled",
    Action.PACK.value: "packed",
    Action.PICKUP.value: "in_transit",
    "receipt": "received",
    Action.STORE.value: "stored",
    Action.DISPENSE.value: "dispensed",
    Action.THAW.value: "thawed",
    Action.INFUSE.value: "infused",
    Action.DISPOSE.value: "disposed",
    # Starting material made into a product bag (services/cases.create_unit): recorded right after the
    # bag's registration, which names the same units as its `from_units`.
    "consume": "consumed",
}
CONSUME = "consume"
# Steps that set a shipment's status. A receive scan does only when it names no unit (the arrival).
SHIPMENT_STATUS_ACTIONS = ("shipment_planned", "pack", "pickup", "receive", "receipt")


def shipment_statuses_after(action: str, decision: str | None) -> frozenset[str]:
    """The statuses a shipment may have after its last status-setting step: a pack leaves it packing or
    packed, depending on whether the manifest is complete (the full replay tells which)."""
    if action == "shipment_planned":
        return frozenset({"planned"})
    if action == "pack":
        return frozenset({"packing", "packed"})
    if action == "pickup":
        return frozenset({"in_transit"})
    if action == "receive":
        return frozenset({"arrived"})
    if action == "receipt":
        return frozenset({"quarantined" if decision == "quarantine" else "received"})
    raise ValueError(f"{action} does not set a shipment's status")


class DerivedUnit(msgspec.Struct):
    status: str
    site: str | None
    kind: str = ""
    shipment_id: str | None = None
    released: bool = False
    quarantined: bool = False


class DerivedShipment(msgspec.Struct):
    status: str
    holder_id: int | None
    manifest: set[str]
    packed: set[str]


class Derived(msgspec.Struct):
    case_status: str
    units: dict[str, DerivedUnit]
    shipments: dict[str, DerivedShipment]


def _data(record: EventRecord) -> dict[str, Any]:
    return record.data if isinstance(record.data, dict) else {}


# A case is completed once a product bag of it was infused and none is left to give (each infused or
# disposed), as the scan that infuses or disposes the last one finds (db/repo/cases.complete_if_done).
FINISHING_ACTIONS = (Action.INFUSE.value, Action.DISPOSE.value)
CASE_CANCELLED = "case_cancelled"
# A case whose bags are another case's (an allogeneic recipient's) is completed by an event of its own.
CASE_COMPLETED = "case_completed"


def _completed(units: dict[str, DerivedUnit]) -> bool:
    products = [u.status for u in units.values() if u.kind == "PRC"]
    return UnitStatus.INFUSED.value in products and all(s in FINAL_UNIT_STATES for s in products)


# What each kind of accepted event does to the derived state: one small function per kind, in tables. The
# states hold the statuses' plain strings (`.value`): a mismatch names them as the stored rows do.
Apply = Callable[[Derived, EventRecord], None]
ShipmentApply = Callable[[Derived, DerivedShipment, EventRecord], None]


def _known(derived: Derived, record: EventRecord) -> list[DerivedUnit]:
    """The units an event names that the record registered (others are left alone)."""
    return [derived.units[u] for u in record.unit_ids if u in derived.units]


def _registered(derived: Derived, record: EventRecord) -> None:
    kind = str(_data(record).get("kind", ""))
    for unit_id in record.unit_ids:
        derived.units[unit_id] = DerivedUnit(UnitStatus.CREATED.value, record.site, kind)


def _cancelled(derived: Derived, record: EventRecord) -> None:
    derived.case_status = CaseStatus.CANCELLED.value


def _case_completed(derived: Derived, record: EventRecord) -> None:
    derived.case_status = CaseStatus.COMPLETED.value


def _planned(derived: Derived, record: EventRecord) -> None:
    if not record.shipment_id:
        return
    derived.shipments[record.shipment_id] = DerivedShipment(
        ShipmentStatus.PLANNED.value, None, set(record.unit_ids), set()
    )
    for unit in _known(derived, record):
        unit.shipment_id = record.shipment_id


def _released(derived: Derived, record: EventRecord) -> None:
    for unit in _known(derived, record):
        unit.released = True


def _held(derived: Derived, record: EventRecord) -> None:
    for unit in _known(derived, record):
        unit.quarantined = record.action == "hold"


def _holder_takes(derived: Derived, ship: DerivedShipment, record: EventRecord) -> None:
    # The courier or receiver holds the shipment; its units are with them, at no site.
    ship.holder_id = record.actor_id
    for unit_id in ship.manifest:
        if unit_id in derived.units:
            derived.units[unit_id].site = None


def _packed(derived: Derived, ship: DerivedShipment, record: EventRecord) -> None:
    ship.packed |= set(record.unit_ids)
    ship.status = (
        ShipmentStatus.PACKED.value if ship.packed >= ship.manifest else ShipmentStatus.PACKING.value
    )


def _picked_up(derived: Derived, ship: DerivedShipment, record: EventRecord) -> None:
    ship.status = ShipmentStatus.IN_TRANSIT.value
    _holder_takes(derived, ship, record)


def _arrived(derived: Derived, ship: DerivedShipment, record: EventRecord) -> None:
    # A receive scan naming units checks them off; only the shipment scanned alone is its arrival.
    if not record.unit_ids:
        ship.status = ShipmentStatus.ARRIVED.value
        _holder_takes(derived, ship, record)


def _receipt(derived: Derived, ship: DerivedShipment, record: EventRecord) -> None:
    quarantine = _data(record).get("decision") == "quarantine"
    ship.status = ShipmentStatus.QUARANTINED.value if quarantine else ShipmentStatus.RECEIVED.value
    ship.holder_id = record.actor_id
    for unit in _known(derived, record):
        unit.site = record.site
        unit.quarantined = unit.quarantined or quarantine


# Events that only register, plan or flag: they set no unit status through UNIT_STATUS_OF_ACTION.
BOOKKEEPING: dict[str, Apply] = {
    "unit_registered": _registered,
    CASE_CANCELLED: _cancelled,
    CASE_COMPLETED: _case_completed,
    "shipment_planned": _planned,
    "release": _released,
    "hold": _held,
    "hold_released": _held,
}
# What a step does to the shipment it names, beyond its units' statuses.
SHIPMENT_EFFECTS: dict[str, ShipmentApply] = {
    Action.PACK.value: _packed,
    Action.PICKUP.value: _picked_up,
    "handover_confirm": _holder_takes,
    Action.RECEIVE.value: _arrived,
    "receipt": _receipt,
}


def _step(derived: Derived, record: EventRecord, ship: DerivedShipment | None) -> None:
    """A custody step: its units' new status, the case completed by its last infusion, its shipment."""
    status = UNIT_STATUS_OF_ACTION.get(record.action)
    if status is not None:
        for unit in _known(derived, record):
            unit.status = status
    finishing = record.action in FINISHING_ACTIONS and derived.case_status == CaseStatus.OPEN.value
    if finishing and _completed(derived.units):
        derived.case_status = CaseStatus.COMPLETED.value
    effect = SHIPMENT_EFFECTS.get(record.action)
    if ship is not None and effect is not None:
        effect(derived, ship, record)


def replay(records: list[EventRecord]) -> Derived:
    derived = Derived(CaseStatus.OPEN.value, {}, {})
    for record in records:
        if record.outcome != "accepted":
            continue
        # The shipment as it was before this event (a plan makes a new one; a step finds it).
        ship = derived.shipments.get(record.shipment_id) if record.shipment_id else None
        bookkeeping = BOOKKEEPING.get(record.action)
        if bookkeeping is not None:
            bookkeeping(derived, record)
        else:
            _step(derived, record, ship)
    return derived


class Mismatch(msgspec.Struct, frozen=True):
    """An object whose stored state differs from what its custody record says."""

    object: str
    id: str
    field: str
    recorded: Any
    stored: Any


def compare(
    derived: Derived,
    coi: str,
    case_status: str,
    units: list[dict[str, Any]],
    shipments: list[dict[str, Any]],
) -> list[Mismatch]:
    """`units` and `shipments`: the stored rows as mappings (the fields compared must be present)."""
    found: list[Mismatch] = []
    if case_status != derived.case_status:
        found.append(Mismatch("case", coi, "status", derived.case_status, case_status))
    for row in units:
        unit = derived.units.get(row["id"])
        if unit is None:
            found.append(Mismatch("unit", row["id"], "status", None, row["status"]))
            continue
        for field in ("status", "site", "shipment_id", "released", "quarantined"):
            if getattr(unit, field) != row[field]:
                found.append(Mismatch("unit", row["id"], field, getattr(unit, field), row[field]))
    for row in shipments:
        ship = derived.shipments.get(row["id"])
        if ship is None:
            found.append(Mismatch("shipment", row["id"], "status", None, row["status"]))
            continue
        for field in ("status", "holder_id"):
            if getattr(ship, field) != row[field]:
                found.append(Mismatch("shipment", row["id"], field, getattr(ship, field), row[field]))
    return found
