"""The release gate at receipt: the pharmacist's (or manufacturing's) signed decision after scanning a
delivery, accept or quarantine."""

from __future__ import annotations

from backend.domain.access import Role
from backend.domain.custody.checks import check_open
from backend.domain.custody.model import Change, Refusal, ShipmentState
from backend.domain.statuses import CaseStatus, ShipmentStatus, UnitStatus

# While a critical alert of one of these kinds is not resolved on the leg, the delivery may only be
# quarantined, or accepted with a QA override signature that states the deviation. What the product went
# through is QA's decision, not the receiving pharmacist's.
RECEIPT_BLOCKING_ALERTS = frozenset({"temperature_high", "temperature_low", "mkt", "rate"})
RECEIPT_OVERRIDE_ROLES = frozenset({Role.QA})


def receipt_decision(shipment: ShipmentState, accept: bool, case_status: str = CaseStatus.OPEN) -> Change:
    """The pharmacist's (or manufacturing's) signed decision after scanning a delivery."""
    check_open(case_status, "receipt")
    if shipment.status != ShipmentStatus.ARRIVED:
        raise Refusal(
            "out_of_order", f"shipment {shipment.id} is {shipment.status}; scan it on arrival first"
        )
    missing = sorted(shipment.manifest - shipment.receipt_scanned)
    if accept and missing:
        raise Refusal(
            "unscanned_items", f"scan every expected unit before accepting: missing {', '.join(missing)}"
        )
    status = ShipmentStatus.RECEIVED if accept else ShipmentStatus.QUARANTINED
    return Change(
        f"shipment {shipment.id} {'accepted' if accept else 'quarantined'}",
        unit_status={u: UnitStatus.RECEIVED for u in shipment.manifest},
        unit_site=shipment.to_site,
        shipment_status=status,
    )
