"""What recording a scan comes to: `Accepted` or `Refused`, with no HTTP in either. The API answers them
(backend/api/refusals.py maps each refusal code to its status and problem); the idempotency store keeps
them as they are, so a resend is answered from the same outcome."""

from __future__ import annotations

import msgspec

from backend.domain.custody import Refusal

# The stored state of a scanned unit or shipment disagrees with its custody record: a critical alert.
RECORD_MISMATCH = "record_mismatch"

# One refusal code may cover refusals the API answers differently: a caller not assigned to the scan's
# site is refused `wrong_site` like a step scanned at the wrong site of its route, but as forbidden, not
# as a conflict; several shipments in one scan are `unexpected_item` like a bag outside the manifest,
# but as a malformed scan. The variant names which one it is, and keys the API's table with the code.
UNASSIGNED_SITE = "unassigned"
SEVERAL_SHIPMENTS = "several_shipments"


class ScanRefusal(Refusal):
    """A refusal the scan service raises itself, with its variant (see above) when it has one."""

    def __init__(self, code: str, detail: str, *, variant: str | None = None) -> None:
        super().__init__(code, detail)
        self.variant = variant


class Accepted(msgspec.Struct, frozen=True, kw_only=True, tag_field="outcome", tag="accepted"):
    """The step was applied and appended to the case's chain."""

    event_id: int
    coi: str
    seq: int
    action: str
    shipment_id: str | None
    unit_ids: list[str]
    shipment_status: str | None
    unit_statuses: dict[str, str]
    message: str
    # ISO 8601 as the first answer gave it: a resend is answered with the very same text.
    server_time: str
    hash: str


class Refused(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="outcome", tag="refused"
):
    """The step was refused, recorded (in the case's chain, or as an orphan when it names no case the
    caller may see) and alerted. `code` is stable for clients, `detail` is for the person scanning."""

    code: str
    detail: str
    # The refused event in the chain, and its case; None for an orphan refusal.
    event_id: int | None = None
    coi: str | None = None
    variant: str | None = None


Outcome = Accepted | Refused


def refused(refusal: Refusal, event_id: int | None, coi: str | None) -> Refused:
    return Refused(
        code=refusal.code,
        detail=refusal.detail,
        event_id=event_id,
        coi=coi,
        variant=refusal.variant if isinstance(refusal, ScanRefusal) else None,
    )
