"""State from the record: the unit, shipment and case states a custody chain implies, replayed event by
event with the effects the state machine (backend/domain/custody/) gave each accepted step. The tables
hold the same states for speed; where they differ from the record, the tables were changed without an
event (or the record was), and verification says so with both states.

Pure: it receives the events in chain order and returns the derived states."""

from __future__ import annotations

from typing import Any

import msgspec

from backend.domain.chain import EventRecord
from backend.domain.custody import Action

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
    return "infused" in products and all(s in ("infused", "disposed") for s in products)


def replay(records: list[EventRecord]) -> Derived:
    derived = Derived("open", {}, {})
    units, shipments = derived.units, derived.shipments
    for record in records:
        if record.outcome != "accepted":
            continue
        action = record.action
        ship = shipments.get(record.shipment_id) if record.shipment_id else None

        def holder_takes(ship: DerivedShipment, record: EventRecord = record) -> None:
            # The courier or receiver holds the shipment; its units are with them, at no site.
            ship.holder_id = record.actor_id
            for unit_id in ship.manifest:
                if unit_id in units:
                    units[unit_id].site = None

        if action == "unit_registered":
            for unit_id in record.unit_ids:
                units[unit_id] = DerivedUnit("created", record.site, str(_data(record).get("kind", "")))
            continue
        if action == CASE_CANCELLED:
            derived.case_status = "cancelled"
            continue
        if action == CASE_COMPLETED:
            derived.case_status = "completed"
            continue
        if action == "shipment_planned" and record.shipment_id:
            shipments[record.shipment_id] = DerivedShipment("planned", None, set(record.unit_ids), set())
            for unit_id in record.unit_ids:
                if unit_id in units:
                    units[unit_id].shipment_id = record.shipment_id
            continue
        if action == "release":
            for unit_id in record.unit_ids:
                if unit_id in units:
                    units[unit_id].released = True
            continue
        if action in ("hold", "hold_released"):
            for unit_id in record.unit_ids:
                if unit_id in units:
                    units[unit_id].quarantined = action == "hold"
            continue
        status = UNIT_STATUS_OF_ACTION.get(action)
        if status is not None:
            for unit_id in record.unit_ids:
                if unit_id in units:
                    units[unit_id].status = status
        if action in FINISHING_ACTIONS and derived.case_status == "open" and _completed(units):
            derived.case_status = "completed"
        if ship is None:
            continue
        if action == "pack":
            ship.packed |= set(record.unit_ids)
            ship.status = "packed" if ship.packed >= ship.manifest else "packing"
        elif action == "pickup":
            ship.status = "in_transit"
            holder_takes(ship)
        elif action == "handover_confirm":
            holder_takes(ship)
        elif action == "receive" and not record.unit_ids:
            ship.status = "arrived"
            holder_takes(ship)
        elif action == "receipt":
            quarantine = _data(record).get("decision") == "quarantine"
            ship.status = "quarantined" if quarantine else "received"
            ship.holder_id = record.actor_id
            for unit_id in record.unit_ids:
                if unit_id in units:
                    units[unit_id].site = record.site
                    units[unit_id].quarantined = units[unit_id].quarantined or quarantine
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
