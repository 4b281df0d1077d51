"""Which EPCIS event each custody step becomes, and which custody step a captured EPCIS event is: the one
table both directions read, so export and capture cannot drift apart.

Refused steps are not exported: a refused scan did not happen in the physical world, and EPCIS events
state what happened to objects (a refusal is kept, signed and alerted in Celltrail's own record and its
PDF). Administrative entries (case opened, shipment planned, label printed, corrections) are not supply
chain events and are not exported either."""

from __future__ import annotations

from typing import Final

import msgspec

from backend.domain.custody import Action


class Step(msgspec.Struct, frozen=True):
    """One EPCIS event for a custody step: ObjectEvent or AggregationEvent with its action, or a
    TransformationEvent (no action)."""

    event_type: str
    action: str
    biz_step: str
    disposition: str | None


OBJECT: Final = "ObjectEvent"
AGGREGATION: Final = "AggregationEvent"
TRANSFORMATION: Final = "TransformationEvent"
SENSOR_REPORTING: Final = "sensor_reporting"

# Custody action (and, for the receipt decision, its outcome) -> the EPCIS events it is exported as.
EXPORTED: Final[dict[str, tuple[Step, ...]]] = {
    "unit_registered": (Step(OBJECT, "ADD", "commissioning", "active"),),
    # A product bag registered from starting material: the apheresis units go in, the bag comes out (a
    # transformation has no action). The `consume` entry recorded with it states the same inputs and is
    # not exported again.
    "unit_registered:made": (Step(TRANSFORMATION, "", "commissioning", "active"),),
    "label": (Step(OBJECT, "OBSERVE", "encoding", "active"),),
    "pack": (Step(AGGREGATION, "ADD", "packing", "in_progress"),),
    "pickup": (Step(OBJECT, "OBSERVE", "shipping", "in_transit"),),
    "handover": (Step(OBJECT, "OBSERVE", "transporting", "in_transit"),),
    "handover_confirm": (Step(OBJECT, "OBSERVE", "accepting", "in_transit"),),
    "receive": (Step(OBJECT, "OBSERVE", "receiving", "in_progress"),),
    # The leg's temperature is what was observed on the way (a sensor report, with an ALARM_CONDITION
    # when there was one); the receiving event states what the receiver decided, with the reviewed
    # temperature in hand. Two events, so that an alarm never stands beside a disposition it contradicts.
    "receipt:accept": (
        Step(OBJECT, "OBSERVE", SENSOR_REPORTING, None),
        Step(OBJECT, "OBSERVE", "receiving", "conformant"),
        Step(AGGREGATION, "DELETE", "unpacking", None),
    ),
    "receipt:quarantine": (
        Step(OBJECT, "OBSERVE", SENSOR_REPORTING, None),
        Step(OBJECT, "OBSERVE", "receiving", "non_conformant"),
        Step(AGGREGATION, "DELETE", "unpacking", None),
    ),
    "release": (Step(OBJECT, "OBSERVE", "inspecting", "conformant"),),
    "store": (Step(OBJECT, "OBSERVE", "storing", "available"),),
    "dispense": (Step(OBJECT, "OBSERVE", "dispensing", "in_progress"),),
    # CBV has no thawing step: `other` is its term for a step it does not name.
    "thaw": (Step(OBJECT, "OBSERVE", "other", "in_progress"),),
    # The whole unit went to the patient.
    "infuse": (Step(OBJECT, "OBSERVE", "dispensing", "dispensed"),),
    "dispose": (Step(OBJECT, "OBSERVE", "destroying", "destroyed"),),
}

# Captured business step -> custody action, for events naming Celltrail units and shipments. Steps that
# need what EPCIS does not carry (two bedside signatures, the receiver of a hand-over, a QA signature)
# are not captured.
CAPTURED: Final[dict[str, Action]] = {
    "shipping": Action.PICKUP,
    "departing": Action.PICKUP,
    "arriving": Action.RECEIVE,
    "receiving": Action.RECEIVE,
    "packing": Action.PACK,
    "storing": Action.STORE,
    "dispensing": Action.DISPENSE,
}


def export_key(action: str, data: object) -> str:
    """The EXPORTED key of a stored event (the receipt's decision picks its disposition)."""
    if action == "receipt":
        decision = data.get("decision") if isinstance(data, dict) else None
        return "receipt:quarantine" if decision == "quarantine" else "receipt:accept"
    if action == "unit_registered" and isinstance(data, dict) and data.get("from_units"):
        return "unit_registered:made"
    return action
