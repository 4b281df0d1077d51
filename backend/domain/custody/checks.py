"""The checks every custody step shares: one patient per step, an open case, expiry and the thaw window,
and the needs of a step (units, a shipment, a status, a site, the manifest). Each raises the Refusal that
says why not, or returns."""

from __future__ import annotations

from collections.abc import Set
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backend.domain import samples
from backend.domain.custody.model import (
    CLOSED_CASE_ACTIONS,
    EXPIRY_CHECKED,
    THAW_TO_INFUSION,
    Action,
    Refusal,
    ShipmentState,
    UnitState,
)
from backend.domain.statuses import CaseStatus


def check_same_case(
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


def check_manifest(shipment: ShipmentState, units: list[UnitState]) -> None:
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
    if case_status != CaseStatus.OPEN and action not in CLOSED_CASE_ACTIONS:
        raise Refusal(
            "case_closed",
            f"the case is {case_status}: it takes no further custody steps (what is left of it can still "
            "be disposed, and QA can still correct the record)",
        )


def check_times(action: Action, units: list[UnitState], now: datetime) -> None:
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


def need_site(site: str, expected: str | None, what: str) -> None:
    if expected is not None and site != expected:
        raise Refusal("wrong_site", f"{what} happens at site {expected}, but this scan is at {site}")


def need_units(action: Action, units: list[UnitState]) -> None:
    if not units:
        raise Refusal("unknown_item", f"a {action} scan needs at least one unit (bag) code")
    if (never := samples.refusal(action, units)) is not None:
        raise Refusal("not_for_patients", never)


def need_shipment(action: Action, shipment: ShipmentState | None) -> ShipmentState:
    if shipment is None:
        raise Refusal("unknown_item", f"a {action} scan needs the shipment's code")
    return shipment


def need_status(unit: UnitState, allowed: Set[str], action: Action) -> None:
    if unit.status not in allowed:
        wanted = " or ".join(sorted(allowed))
        raise Refusal("out_of_order", f"unit {unit.id} is {unit.status}; {action} needs it to be {wanted}")
