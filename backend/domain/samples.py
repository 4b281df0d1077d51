"""Biobank samples (unit kind SMP): the custody rules that set them apart from product bags, as tables
the custody state machine (`backend.domain.custody`) reads.

A sample is research material: it is registered, labelled, stored at a position, moved and in the end
destroyed (or used up by the biobank, recorded as a disposal). It never goes towards a patient, whatever
its status: no dispense, thaw or infusion."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Protocol

SAMPLE: Final = "SMP"

# Custody steps a kind of unit never takes.
NEVER: Final[dict[str, frozenset[str]]] = {SAMPLE: frozenset({"dispense", "thaw", "infuse"})}
# Statuses a kind may be stored from beyond a receipt: a sample is kept where it was taken, so it is
# stored straight from its labelling, with no shipment to receive.
STORE_FROM: Final[dict[str, frozenset[str]]] = {SAMPLE: frozenset({"labelled"})}


class _Unit(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...


def refusal(action: str, units: Iterable[_Unit]) -> str | None:
    """Why `action` may not take one of `units` (None: the kind allows it)."""
    for unit in units:
        if action in NEVER.get(unit.kind, frozenset()):
            done = {"dispense": "dispensed", "thaw": "thawed", "infuse": "infused"}.get(action, action)
            return f"STOP — {unit.id} is a biobank sample: research material is never {done}. Do not proceed."
    return None
