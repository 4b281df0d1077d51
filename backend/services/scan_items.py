"""What a scan's codes name: parsed into shipments, units, DINs and COIs, then resolved through the object
gate to the records the caller may see."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from backend.db.repo import cases, shipments
from backend.db.repo.cases import UnitRow
from backend.db.repo.shipments import ShipmentRow
from backend.domain.custody import Action
from backend.services import objects
from backend.services.visibility import site_filter
from celltrail_shared.identifiers import Coi, Din, IdentifierError, ShipmentId, UnitId, parse_identifier

if TYPE_CHECKING:
    from backend.db.types import Conn
    from backend.domain.access import Principal


class Scanned(msgspec.Struct, frozen=True):
    shipment_ids: list[str]
    unit_ids: list[str]
    dins: list[str]
    cois: list[str]
    bad: list[str]


def classify(codes: list[str]) -> Scanned:
    shipments_: list[str] = []
    units_: list[str] = []
    dins: list[str] = []
    cois: list[str] = []
    bad: list[str] = []
    for code in codes:
        try:
            identifier = parse_identifier(code)
        except IdentifierError as exc:
            bad.append(f"{code!r}: {exc.reason}")
            continue
        if isinstance(identifier, ShipmentId):
            shipments_.append(identifier.text)
        elif isinstance(identifier, UnitId):
            units_.append(identifier.text)
        elif isinstance(identifier, Din):
            dins.append(identifier.barcode)
        elif isinstance(identifier, Coi):
            cois.append(identifier.value)
        else:
            bad.append(f"{code!r}: a {type(identifier).__name__} is not a custody item")
    return Scanned(shipments_, units_, dins, cois, bad)


class Items(msgspec.Struct):
    """What the scanned codes name, as far as the caller may see: anything else is unknown to them."""

    shipment: ShipmentRow | None
    units: list[UnitRow]
    unknown_units: list[str]
    case_coi: str | None

    def coi(self, action: Action) -> str | None:
        """The case the scan acts on: its shipment's, else its first unit's, else the wristband's (not
        for an infusion, which needs the bag)."""
        coi = self.shipment.coi if self.shipment else (self.units[0].coi if self.units else None)
        return self.case_coi if coi is None and action is not Action.INFUSE else coi

    def unknown(self, scanned: Scanned) -> list[str]:
        """The codes that name nothing the caller may see. A shipment scanned with units of a known case
        is refused when unknown (or not visible), not ignored."""
        unknown = [f"unknown unit {u}" for u in self.unknown_units]
        if scanned.shipment_ids and self.shipment is None:
            unknown.append(f"unknown shipment {scanned.shipment_ids[0]}")
        return unknown


async def resolve(conn: Conn, actor: Principal, scanned: Scanned) -> Items:
    """The object gate for a scan: resolve every code, keep only what the caller may see. A record of
    another site is answered as one that does not exist, and the scan then writes nothing to its chain."""
    shipment = await shipments.get(conn, scanned.shipment_ids[0]) if scanned.shipment_ids else None
    if shipment is not None and not objects.sees_shipment(actor, shipment):
        shipment = None
    units: list[UnitRow] = []
    if scanned.unit_ids or scanned.dins:
        # Read FOR UPDATE: they cannot change before the step is applied under the chain lock.
        units = await cases.lock_visible_units(conn, scanned.unit_ids, scanned.dins, site_filter(actor))
    found = {u.id for u in units} | {u.din for u in units if u.din}
    unknown = sorted({code for code in scanned.unit_ids + scanned.dins if code not in found})
    case_coi = None
    if scanned.cois:
        case = await cases.get_case(conn, scanned.cois[0])
        case_coi = case.coi if case is not None and objects.sees_case(actor, case) else None
    return Items(shipment, units, unknown, case_coi)
