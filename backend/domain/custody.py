"""The custody state machine: which step may follow which, for units and shipments. Pure: it receives the
current state and the scan, and returns the change or a Refusal saying why not."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from backend.domain import samples
from backend.domain.access import Role


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
FINAL_UNIT_STATES = frozenset({"infused", "disposed"})
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
    """A scan the record refuses; `code` is stable for clients, `detail` is for the person scanning."""

    def __init__(self, code: str, detail: str, *, status: int = 409) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


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


def _check_same_case(
    shipment: ShipmentState | None, units: list[UnitState], wristband_coi: str | None
) -> None:
    cois = {u.coi for u in units}
    if shipment is not None:
        cois.add(shipment.coi)
    if wristband_coi is not None:
        cois.add(wristband_coi)
    if len(cois) > 1:
        raise Refusal(
            "coi_mismatch",
            "STOP — chain of identity mismatch: the scanned items belong to different patients "
            f"({', '.join(sorted(cois))}). Do not proceed; the mismatch is recorded and coordinators "
            "alerted.",
        )


def _check_manifest(shipment: ShipmentState, units: list[UnitState]) -> None:
    for unit in units:
        if unit.id not in shipment.manifest:
            if unit.shipment_id and unit.shipment_id != shipment.id:
                raise Refusal(
                    "wrong_shipment",
                    f"unit {unit.id} belongs to shipment {unit.shipment_id}, not {shipment.id}",
                )
            raise Refusal(
                "unexpected_item", f"unit {unit.id} is not on the manifest of shipment {shipment.id}"
            )


def check_open(case_status: str, action: str) -> None:
    """A completed or cancelled case takes no custody step but disposal of what is left of it."""
    if case_status != "open" and action not in CLOSED_CASE_ACTIONS:
        raise Refusal(
            "case_closed",
            f"the case is {case_status}: it takes no further custody steps (what is left of it can still "
            "be disposed, and QA can still correct the record)",
        )


def _check_times(action: Action, units: list[UnitState], now: datetime) -> None:
    for unit in units:
        if action in EXPIRY_CHECKED and unit.expires_at is not None and now >= unit.expires_at:
            raise Refusal(
                "expired",
                f"STOP — unit {unit.id} expired at {_local(unit.expires_at, unit.zone, day=True)} (now "
                f"{_local(now, unit.zone, day=True)}); an expired unit is not {_PAST[action]}",
            )
        limit = unit.thaw_limit or THAW_TO_INFUSION.get(unit.kind)
        if action is Action.INFUSE and limit is not None and unit.thawed_at is not None:
            waited = now - unit.thawed_at
            if waited > limit:
                raise Refusal(
                    "thaw_window_exceeded",
                    f"STOP — bag {unit.id} was thawed at {_local(unit.thawed_at, unit.zone)}, "
                    f"{int(waited.total_seconds() // 60)} min ago (now {_local(now, unit.zone)}); it must be "
                    f"infused within {int(limit.total_seconds() // 60)} min of thawing (limit "
                    f"{_local(unit.thawed_at + limit, unit.zone)}). Do not infuse; tell QA.",
                )


def _local(moment: datetime, zone: str | None, *, day: bool = False) -> str:
    """A time as read at the site (its zone's abbreviation, e.g. CET), or in UTC without a known zone."""
    try:
        tz = ZoneInfo(zone) if zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    local = moment.astimezone(tz)
    shown = local.strftime("%Y-%m-%d %H:%M" if day else "%H:%M")
    return f"{shown} {'UTC' if tz is UTC else local.tzname()}"


_PAST = {Action.DISPENSE: "dispensed", Action.THAW: "thawed", Action.INFUSE: "infused"}


def _need_site(site: str, expected: str | None, what: str) -> None:
    if expected is not None and site != expected:
        raise Refusal("wrong_site", f"{what} happens at site {expected}, but this scan is at {site}")


def _need_units(action: Action, units: list[UnitState]) -> None:
    if not units:
        raise Refusal("unknown_item", f"a {action} scan needs at least one unit (bag) code", status=422)
    if (never := samples.refusal(action, units)) is not None:
        raise Refusal("not_for_patients", never)


def _need_shipment(action: Action, shipment: ShipmentState | None) -> ShipmentState:
    if shipment is None:
        raise Refusal("unknown_item", f"a {action} scan needs the shipment's code", status=422)
    return shipment


def _need_status(unit: UnitState, allowed: set[str], action: Action) -> None:
    if unit.status not in allowed:
        wanted = " or ".join(sorted(allowed))
        raise Refusal("out_of_order", f"unit {unit.id} is {unit.status}; {action} needs it to be {wanted}")


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
    case_status: str = "open",
) -> Change:
    """`now`: the step's time, for a unit's expiry and a bag's thaw window (None: not checked, for tests
    of the order of steps alone). `case_status`: a completed or cancelled case takes no custody step but
    disposal of what is left (`CLOSED_CASE_ACTIONS`)."""
    _check_same_case(shipment, units, wristband_coi)
    check_open(case_status, action)
    if now is not None:
        _check_times(action, units, now)
    if action is Action.LABEL:
        _need_units(action, units)
        for unit in units:
            _need_status(unit, {"created"}, action)
            _need_site(site, unit.site, f"labelling {unit.id}")
        return Change(
            f"labelled {', '.join(u.id for u in units)}", unit_status={u.id: "labelled" for u in units}
        )

    if action is Action.PACK:
        ship = _need_shipment(action, shipment)
        _need_units(action, units)
        if ship.status not in ("planned", "packing"):
            raise Refusal(
                "out_of_order", f"shipment {ship.id} is {ship.status}; units can no longer be packed"
            )
        _need_site(site, ship.from_site, f"packing shipment {ship.id}")
        _check_manifest(ship, units)
        for unit in units:
            _need_status(unit, {"labelled", "received", "stored"}, action)
            if unit.kind == "PRC" and not unit.released:
                raise Refusal(
                    "not_released", f"product bag {unit.id} has no QA release; it cannot be shipped"
                )
            if unit.quarantined:
                raise Refusal("quarantined", f"unit {unit.id} is quarantined; it cannot be shipped")
        packed = ship.packed | {u.id for u in units}
        return Change(
            f"packed {', '.join(u.id for u in units)} into {ship.id}",
            unit_status={u.id: "packed" for u in units},
            shipment_status="packed" if packed >= ship.manifest else "packing",
            packed=packed,
        )

    if action is Action.PICKUP:
        ship = _need_shipment(action, shipment)
        if ship.status != "packed":
            missing = sorted(ship.manifest - ship.packed)
            hint = f" (not yet packed: {', '.join(missing)})" if missing else ""
            raise Refusal(
                "out_of_order", f"shipment {ship.id} is {ship.status}; pick-up needs it packed{hint}"
            )
        _need_site(site, ship.from_site, f"pick-up of {ship.id}")
        return Change(
            f"picked up {ship.id}",
            unit_status={u: "in_transit" for u in ship.manifest},
            shipment_status="in_transit",
            take_custody=True,
        )

    if action is Action.HANDOVER:
        ship = _need_shipment(action, shipment)
        if ship.status != "in_transit":
            raise Refusal(
                "out_of_order",
                f"shipment {ship.id} is {ship.status}; only a shipment in transit is "
                "handed over between couriers",
            )
        if ship.holder_id != actor_id:
            raise Refusal(
                "not_holder", f"you do not hold shipment {ship.id}; only its holder can hand it over"
            )
        if ship.open_handover:
            raise Refusal("out_of_order", f"a hand-over of {ship.id} is waiting for confirmation")
        if handover_to is None:
            raise Refusal("unknown_item", "a hand-over names the receiver (handover_to)", status=422)
        if handover_to == actor_id:
            raise Refusal("same_person", "you cannot hand a shipment over to yourself", status=422)
        return Change(f"handed over {ship.id}; waiting for the receiver to confirm")

    if action is Action.RECEIVE:
        ship = _need_shipment(action, shipment)
        _need_site(site, ship.to_site, f"receipt of {ship.id}")
        if not units:
            if ship.status != "in_transit":
                raise Refusal(
                    "out_of_order", f"shipment {ship.id} is {ship.status}; it cannot be received now"
                )
            return Change(
                f"{ship.id} arrived; scan each unit, then accept or quarantine",
                shipment_status="arrived",
                take_custody=True,
            )
        if ship.status != "arrived":
            raise Refusal("out_of_order", f"scan shipment {ship.id} itself first (it is {ship.status})")
        _check_manifest(ship, units)
        scanned = ship.receipt_scanned | {u.id for u in units}
        left = len(ship.manifest - scanned)
        return Change(
            f"verified {', '.join(u.id for u in units)}; {left} expected unit(s) still to scan",
            receipt_scanned=scanned,
        )

    if action is Action.STORE:
        _need_units(action, units)
        for unit in units:
            _need_status(unit, {"received", "stored", *samples.STORE_FROM.get(unit.kind, ())}, action)
            _need_site(site, unit.site, f"storing {unit.id}")
            if unit.quarantined:
                raise Refusal("quarantined", f"unit {unit.id} is quarantined; store it only after QA decides")
        return Change(f"stored {', '.join(u.id for u in units)}", unit_status={u.id: "stored" for u in units})

    if action is Action.DISPENSE:
        _need_units(action, units)
        for unit in units:
            _need_status(unit, {"stored"}, action)
            _need_site(site, unit.site, f"dispensing {unit.id}")
        return Change(
            f"dispensed {', '.join(u.id for u in units)}", unit_status={u.id: "dispensed" for u in units}
        )

    if action is Action.THAW:
        _need_units(action, units)
        for unit in units:
            _need_status(unit, {"dispensed"}, action)
            _need_site(site, unit.site, f"thawing {unit.id}")
        return Change(
            f"thaw started for {', '.join(u.id for u in units)}", unit_status={u.id: "thawed" for u in units}
        )

    if action is Action.INFUSE:
        _need_units(action, units)
        if wristband_coi is None:
            raise Refusal(
                "wristband_required", "scan the patient's wristband together with the bag", status=422
            )
        for unit in units:
            _need_status(unit, {"thawed"}, action)
            _need_site(site, unit.site, f"infusing {unit.id}")
        return Change(
            f"infused {', '.join(u.id for u in units)}; wristband and bag match",
            unit_status={u.id: "infused" for u in units},
        )

    if action is Action.DISPOSE:
        _need_units(action, units)
        for unit in units:
            if unit.status in FINAL_UNIT_STATES:
                raise Refusal("out_of_order", f"unit {unit.id} is already {unit.status}")
        return Change(
            f"disposed {', '.join(u.id for u in units)}", unit_status={u.id: "disposed" for u in units}
        )
    raise AssertionError(f"unhandled action {action}")  # pragma: no cover - the enum is exhaustive


# The release gate at receipt: while a critical alert of one of these kinds is not resolved on the leg, the
# delivery may only be quarantined, or accepted with a QA override signature that states the deviation.
# What the product went through is QA's decision, not the receiving pharmacist's.
RECEIPT_BLOCKING_ALERTS = frozenset({"temperature_high", "temperature_low", "mkt", "rate"})
RECEIPT_OVERRIDE_ROLES = frozenset({Role.QA})


def receipt_decision(shipment: ShipmentState, accept: bool, case_status: str = "open") -> Change:
    """The pharmacist's (or manufacturing's) signed decision after scanning a delivery."""
    check_open(case_status, "receipt")
    if shipment.status != "arrived":
        raise Refusal(
            "out_of_order", f"shipment {shipment.id} is {shipment.status}; scan it on arrival first"
        )
    missing = sorted(shipment.manifest - shipment.receipt_scanned)
    if accept and missing:
        raise Refusal(
            "unscanned_items", f"scan every expected unit before accepting: missing {', '.join(missing)}"
        )
    status = "received" if accept else "quarantined"
    return Change(
        f"shipment {shipment.id} {'accepted' if accept else 'quarantined'}",
        unit_status={u: "received" for u in shipment.manifest},
        unit_site=shipment.to_site,
        shipment_status=status,
    )
