"""Allogeneic (off-the-shelf) units: which patient a bag of a batch is for. Pure: no I/O.

A bag of an allogeneic batch carries the batch's COI (the chain of identity runs donor or cell line ->
batch -> unit), not a patient's. The patient it is for is the recipient its allocation names, so when a
step compares a bag with a wristband, that recipient is the bag's patient; a bag allocated to nobody is
given to nobody. The custody state machine (`custody.decide`) is left as it is: the scan hands it the
units with their patient's COI in place of the batch's, and its chain-of-identity check does the rest
(a bag of recipient A with recipient B's wristband is the same STOP as two autologous patients' items)."""

from __future__ import annotations

import msgspec

from backend.domain.custody import Action, Refusal, UnitState

# The steps that hand a bag on towards a patient: none of them takes a bag allocated to nobody.
NEEDS_ALLOCATION = frozenset({Action.DISPENSE, Action.THAW, Action.INFUSE})
NOT_ALLOCATED = "not_allocated"
RECORD_MISMATCH = "record_mismatch"


class Allocation(msgspec.Struct, frozen=True):
    """What is known about one unit. `allogeneic`: a bag of an allogeneic batch. `recipient`: the case it
    is allocated to as the allocations table says; `recorded`: as the signed `allocate` event the row names
    says (None when the row names no such event of this unit's batch). They differ only when the table was
    changed behind the record's back."""

    unit_id: str
    batch_coi: str
    allogeneic: bool
    recipient: str | None
    recorded: str | None
    # The recipient's case status: a completed or cancelled case's patient is given nothing more.
    recipient_status: str | None = None

    @property
    def tampered(self) -> bool:
        return self.recipient != self.recorded


def tampered_detail(allocation: Allocation) -> str:
    return (
        f"STOP — the allocation of unit {allocation.unit_id} in the database (case "
        f"{allocation.recipient or 'none'}) differs from its signed record (case "
        f"{allocation.recorded or 'none'}). The stored allocation was changed without a custody event; do "
        "not proceed. QA and the coordinators are alerted."
    )


def closed_detail(allocation: Allocation) -> str | None:
    """Why a bag allocated to a case no longer open goes to nobody, or None."""
    if allocation.recipient is None or allocation.recipient_status in (None, "open"):
        return None
    return (
        f"STOP — bag {allocation.unit_id} is allocated to case {allocation.recipient}, which is "
        f"{allocation.recipient_status}: it is given to nobody; dispose of it (QA decides)."
    )


def not_allocated_detail(unit_id: str, batch_coi: str) -> str:
    return (
        f"STOP — bag {unit_id} of allogeneic batch {batch_coi} is allocated to no recipient: a bag of a "
        "batch is dispensed, thawed and infused only for the recipient it was allocated to at dispense."
    )


def patient_units(
    action: Action, units: list[UnitState], allocations: dict[str, Allocation], wristband: str | None
) -> list[UnitState]:
    """The units as a step compares them with a patient: a bag of a batch takes its recipient's COI when a
    wristband (a case's COI) is scanned with it. Refuses a bag of a batch whose allocation row and record
    disagree, and one allocated to nobody in a step towards a patient."""
    shown = []
    for unit in units:
        allocation = allocations.get(unit.id)
        if allocation is None or not allocation.allogeneic:
            shown.append(unit)
            continue
        if allocation.tampered:
            raise Refusal(RECORD_MISMATCH, tampered_detail(allocation))
        if allocation.recipient is None and action in NEEDS_ALLOCATION:
            raise Refusal(NOT_ALLOCATED, not_allocated_detail(unit.id, unit.coi))
        closed = closed_detail(allocation)
        # Another patient's wristband is the graver STOP: the state machine's mismatch says it.
        if closed is not None and action in NEEDS_ALLOCATION and wristband in (None, allocation.recipient):
            raise Refusal("case_closed", closed)
        if wristband is not None and allocation.recipient is not None:
            unit = msgspec.structs.replace(unit, coi=allocation.recipient)
        shown.append(unit)
    return shown


# A bag is thawed for its recipient: from then on it is given to them or disposed of, never to another.
FIXED_STATES = frozenset({"thawed", "infused", "disposed"})


def withdrawal_problem(unit_id: str, unit_status: str) -> str | None:
    """Why the allocation of a bag in `unit_status` can no longer be withdrawn, or None."""
    if unit_status not in FIXED_STATES:
        return None
    return (
        f"{unit_id} is {unit_status}: an allocation is withdrawn only before the bag is thawed; a thawed "
        "bag is given to its recipient or disposed of (QA decides)"
    )
