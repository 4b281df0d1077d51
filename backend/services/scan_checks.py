"""The scan service's own checks of a step, beside the custody rules (backend.domain.custody): the stored
states against the record, the receiver of a hand-over, and an infusion's two signatures."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from backend.db.repo import cases, users
from backend.db.repo.cases import UnitRow
from backend.db.repo.shipments import ShipmentRow
from backend.domain.custody import INFUSION_MEANINGS, INFUSION_SIGNER_ROLES, Action, UnitState
from backend.domain.replay import UNIT_STATUS_OF_ACTION, shipment_statuses_after
from backend.services import chain, signing
from backend.services.scan_outcomes import ScanRefusal

if TYPE_CHECKING:
    from backend.db.types import Conn
    from backend.services.scans import ScanCommand


def state(unit: UnitRow, recorded: cases.RecordedStates) -> UnitState:
    """The unit as the step sees it: its expiry, its thaw time as the record has it (the thaw event's
    time, not the table's column), its catalogue product's thaw window and its site's time zone."""
    record = recorded.units.get(unit.id)
    thawed_at = record.at if record is not None and record.action == "thaw" else None
    window = unit.thaw_to_infusion_min
    return msgspec.structs.replace(
        unit.state(),
        expires_at=unit.expires_at,
        thawed_at=thawed_at,
        thaw_limit=timedelta(minutes=window) if window is not None else None,
        zone=unit.site_zone,
    )


def disagreement(
    recorded: cases.RecordedStates, shipment: ShipmentRow | None, units: list[UnitRow], coi: str
) -> str | None:
    """Where a scanned unit's or shipment's stored status differs from its last recorded step (a cheap
    check of the objects this scan acts on; `verify` replays the whole chain)."""
    for unit in units:
        if unit.coi != coi:
            continue
        record = recorded.units.get(unit.id)
        expected = UNIT_STATUS_OF_ACTION.get(record.action) if record and record.action else None
        if expected != unit.status:
            said = expected or "unrecorded"
            return f"unit {unit.id} is {unit.status} in the database but {said} in its record"
        assert record is not None  # a recorded status implies the unit's entry
        for flag, stored, says in (
            ("released", unit.released, record.released),
            ("quarantined", unit.quarantined, record.quarantined),
        ):
            if stored != says:
                shown = {True: flag, False: f"not {flag}"}
                return f"unit {unit.id} is {shown[stored]} in the database but {shown[says]} in its record"
    if shipment is not None and shipment.coi == coi:
        last = recorded.shipment_action
        allowed = shipment_statuses_after(*last) if last else frozenset()
        if shipment.status not in allowed:
            said = " or ".join(sorted(allowed)) or "unrecorded"
            return f"shipment {shipment.id} is {shipment.status} in the database but {said} in its record"
    return None


async def receiver(conn: Conn, command: ScanCommand, shipment: ShipmentRow | None) -> Any:
    """The person taking custody in a hand-over. They must be able to act on the shipment they will hold:
    bound to its origin or its destination, the sites that see it (someone bound elsewhere could hold a
    shipment they cannot read, and hand it on off route)."""
    if command.action is not Action.HANDOVER or command.handover_to is None:
        return None
    receiver = await users.by_username(conn, command.handover_to.strip().lower())
    if receiver is None or not receiver.active:
        raise ScanRefusal("unknown_receiver", f"no active user named {command.handover_to} to hand over to")
    if not {"courier", "pharmacist", "manufacturing"} & set(receiver.roles):
        raise ScanRefusal("unknown_receiver", f"{receiver.username} cannot take custody of a shipment")
    if shipment is not None and not {shipment.from_site, shipment.to_site} & set(receiver.sites):
        raise ScanRefusal(
            "receiver_not_on_route",
            f"{receiver.full_name} ({receiver.username}) is not bound to {shipment.from_site} or "
            f"{shipment.to_site}, the sites of shipment {shipment.id}: hand it over only to someone "
            "serving this route",
        )
    return receiver


async def signatures(conn: Conn, command: ScanCommand) -> list[Any]:
    if command.action is not Action.INFUSE:
        return []
    people = {s.username.strip().lower() for s in command.signatures}
    if len(command.signatures) != 2 or len(people) != 2:
        raise ScanRefusal(
            "signature_required",
            "an infusion needs two signatures by two different people (verifier and administrator)",
        )
    meanings = sorted(s.meaning for s in command.signatures)
    if meanings != list(INFUSION_MEANINGS):
        raise ScanRefusal(
            "signature_meaning",
            "an infusion is signed once 'verified at bedside' (the verifier) and once 'administered' (the "
            "person who gives it); these signatures mean " + " and ".join(f"'{m}'" for m in meanings),
        )
    at = chain.now()
    return [
        await signing.sign(conn, s.username, s.password, s.meaning, INFUSION_SIGNER_ROLES, at, command.site)
        for s in command.signatures
    ]
