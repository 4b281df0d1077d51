"""The vocabulary of the custody rules: the steps, who takes them, the states a scan is decided from, what
an accepted step changes and the refusal of one that is not."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import msgspec

from backend.domain.access import Role
from backend.domain.statuses import UnitStatus


class Action(enum.StrEnum):
    LABEL = "label"
    PACK = "pack"
    PICKUP = "pickup"
    HANDOVER = "handover"
    RECEIVE = "receive"
    STORE = "store"
    DISPENSE = "dispense"
    THAW = "thaw"
    INFUSE = "infuse"
    DISPOSE = "dispose"


ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.LABEL: frozenset({Role.MANUFACTURING, Role.PHARMACIST}),
    Action.PACK: frozenset({Role.MANUFACTURING, Role.PHARMACIST}),
    Action.PICKUP: frozenset({Role.COURIER}),
    Action.HANDOVER: frozenset({Role.COURIER}),
    Action.RECEIVE: frozenset({Role.PHARMACIST, Role.MANUFACTURING}),
    Action.STORE: frozenset({Role.PHARMACIST, Role.MANUFACTURING}),
    Action.DISPENSE: frozenset({Role.PHARMACIST}),
    Action.THAW: frozenset({Role.PHARMACIST}),
    Action.INFUSE: frozenset({Role.PHARMACIST}),
    Action.DISPOSE: frozenset({Role.PHARMACIST, Role.MANUFACTURING, Role.QA}),
}

# Roles that may sign an infusion (verifier and administrator at the bedside), and what each of the two
# signatures means: one person verified the bag against the wristband, the other administered it.
INFUSION_SIGNER_ROLES = frozenset({Role.PHARMACIST})
INFUSION_MEANINGS = ("administered", "verified at bedside")
FINAL_UNIT_STATES = frozenset({UnitStatus.INFUSED, UnitStatus.DISPOSED})
# The custody steps a completed or cancelled case still takes: destroying what is left of it.
CLOSED_CASE_ACTIONS = frozenset({Action.DISPOSE})
# Steps that hand a product on towards the patient: none of them takes an expired unit.
EXPIRY_CHECKED = frozenset({"dispense", "thaw", "infuse"})
# How long a thawed product bag may wait for its infusion: cell viability falls within the hour after
# thawing, and a bag past its window is a STOP, not a judgement call at the bedside. The default for a
# bag whose product the catalogue does not name; a catalogue product's own window (`UnitState.thaw_limit`,
# passed in by the service) takes its place.
THAW_TO_INFUSION = {"PRC": timedelta(minutes=60)}


class Refusal(Exception):
    """A scan the record refuses; `code` is stable for clients, `detail` is for the person scanning. How
    the API answers a code (its HTTP status and problem type) is the API's table, backend/api/refusals.py."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class UnitState(msgspec.Struct, frozen=True):
    id: str
    coi: str
    kind: str
    status: str
    site: str | None
    shipment_id: str | None
    released: bool
    quarantined: bool
    expires_at: datetime | None = None
    # When the record says the bag was thawed (its thaw event), for the thaw-to-infusion window.
    thawed_at: datetime | None = None
    # The bag's product's thaw-to-infusion window from the catalogue (None: `THAW_TO_INFUSION`'s default).
    thaw_limit: timedelta | None = None
    # The time zone of the unit's site (IANA name): a STOP shows times as the people at the site read them.
    zone: str | None = None


class ShipmentState(msgspec.Struct, frozen=True):
    id: str
    coi: str
    from_site: str
    to_site: str
    status: str
    holder_id: int | None
    manifest: frozenset[str]
    packed: frozenset[str]
    receipt_scanned: frozenset[str]
    open_handover: bool


class Change(msgspec.Struct, frozen=True):
    """What an accepted scan does: new statuses and where things are."""

    detail: str
    unit_status: dict[str, str] = {}
    unit_site: str | None = None
    shipment_status: str | None = None
    packed: frozenset[str] = frozenset()
    receipt_scanned: frozenset[str] = frozenset()
    take_custody: bool = False
