"""What a scan means in each workflow mode. Pure: parsed codes in, steps to record and verdicts out.

Custody modes (``pickup``, ``handover``, ``receive``, ``store``) turn newly reported codes into
:class:`Submit` steps for the backend; the backend decides whether the step is allowed.
``bedside-verify`` never talks to the backend: the wristband/bag COI comparison is computed here so it
works offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from backend.domain.identifiers import Coi, Din, ShipmentId, Sscc, UnitId
from scanner.parse import Parsed, display_text
from scanner.verdict import Level, Verdict


class Mode(StrEnum):
    PICKUP = "pickup"
    HANDOVER = "handover"
    RECEIVE = "receive"
    STORE = "store"
    BEDSIDE_VERIFY = "bedside-verify"


CUSTODY_MODES: Final = frozenset({Mode.PICKUP, Mode.HANDOVER, Mode.RECEIVE, Mode.STORE})
# Only Celltrail wristbands carry the COI as a QR payload (bags carry the unit id there), so that
# symbol identifies a wristband at once; a bare COI barcode could also be a bag's.
WRISTBAND_QR_PREFIX: Final = "CT1:COI:"
DEFAULT_WRISTBAND_SETTLE: Final = 0.5


@dataclass(frozen=True, slots=True)
class Submit:
    """A custody step to record: the body fields of ``POST /api/v1/scans`` the workflow decides."""

    action: str
    codes: tuple[str, ...]
    subject: str  # what the operator sees, e.g. "shipment SHP-2026-000123"
    handover_to: str | None = None
    storage_location: str | None = None


Step = Submit | Verdict


def _is_container(item: Parsed) -> bool:
    return isinstance(item.identifier, ShipmentId | Sscc)


def _is_unit(item: Parsed) -> bool:
    return isinstance(item.identifier, UnitId)


class Workflow:
    def __init__(
        self,
        mode: Mode,
        *,
        handover_to: str | None = None,
        storage_location: str | None = None,
        wristband_settle: float = DEFAULT_WRISTBAND_SETTLE,
    ) -> None:
        if mode is Mode.HANDOVER and not handover_to:
            raise ValueError("handover needs the receiving user (--handover-to USERNAME)")
        if mode is Mode.STORE and not storage_location:
            raise ValueError("store needs where the bag goes (--storage-location TEXT)")
        self.mode = mode
        self.handover_to = handover_to
        self.storage_location = storage_location
        self.wristband_settle = wristband_settle
        self.shipment: Parsed | None = None  # the last shipment scanned in this session (receive)
        self._submitted: set[str] = set()  # container keys already recorded this session
        self.wristband: Coi | None = None
        self._candidate: tuple[Coi, float] | None = None
        self._conflict: frozenset[str] = frozenset()

    def on_frame(self, t: float, seen: Sequence[Parsed], reported: Sequence[Parsed]) -> list[Step]:
        """``seen``: every identifier decoded in the frame at ``t``; ``reported``: those of them the
        debouncer let through (new sightings)."""
        if self.mode is Mode.BEDSIDE_VERIFY:
            return self._bedside(t, seen, reported)
        ordered = [item for item in reported if _is_container(item)]
        ordered += [item for item in reported if _is_unit(item)]
        steps: list[Step] = []
        for item in ordered:
            steps.extend(self._custody(item, seen))
        return steps

    # ------------------------------------------------------------------------------------ custody

    def _custody(self, item: Parsed, seen: Sequence[Parsed]) -> list[Step]:
        if _is_container(item):
            return self._container(item, seen)
        unit = display_text(item.identifier)
        if self.mode is Mode.STORE:
            return [
                Submit("store", (item.detection.text,), f"bag {unit}", storage_location=self.storage_location)
            ]
        if self.mode is Mode.RECEIVE:
            if self.shipment is None:
                return [Verdict(Level.INFO, f"bag {unit}: scan its shipment label first")]
            return [
                Submit(
                    "receive",
                    (self.shipment.detection.text, item.detection.text),
                    f"bag {unit} in {display_text(self.shipment.identifier)}",
                )
            ]
        return [Verdict(Level.INFO, f"bag {unit}: {self.mode} is recorded on the shipment label")]

    def _container(self, item: Parsed, seen: Sequence[Parsed]) -> list[Step]:
        if self.mode is Mode.STORE:
            return [Verdict(Level.INFO, "store: scan the bag labels, not the shipment")]
        # A shipment label carries the shipment id (Code 128 + QR) and often an SSCC: one step per label,
        # whichever of them is read first.
        together = {other.key for other in seen if _is_container(other)} | {item.key}
        if together & self._submitted:
            self._submitted |= together
            return []
        if isinstance(item.identifier, Sscc) and any(isinstance(o.identifier, ShipmentId) for o in seen):
            return []  # the shipment id in the same frame is reported on its own
        self._submitted |= together
        if self.mode is Mode.RECEIVE:
            self.shipment = item
        subject = f"shipment {display_text(item.identifier)}"
        handover_to = self.handover_to if self.mode is Mode.HANDOVER else None
        return [Submit(str(self.mode), (item.detection.text,), subject, handover_to=handover_to)]

    # ------------------------------------------------------------------------------------ bedside

    def _bedside(self, t: float, seen: Sequence[Parsed], reported: Sequence[Parsed]) -> list[Step]:
        steps: list[Step] = []
        cois: dict[str, Coi] = {}
        for item in seen:
            match item.identifier:
                case Coi() as coi:
                    cois[coi.value] = coi
                case UnitId() as unit:
                    cois[unit.coi.value] = unit.coi
        if len(cois) > 1:
            names = frozenset(cois)
            if names != self._conflict:
                self._conflict = names
                listed = " and ".join(coi.eye_readable for coi in cois.values())
                steps.append(Verdict(Level.STOP, f"COI MISMATCH in view: {listed}", "do not infuse"))
            return steps
        self._conflict = frozenset()
        steps.extend(self._wristband(t, seen))
        for item in reported:
            if isinstance(item.identifier, UnitId):
                steps.append(self._compare(item.identifier))
        return steps

    def _wristband(self, t: float, seen: Sequence[Parsed]) -> list[Step]:
        bag_in_view = any(isinstance(item.identifier, UnitId | Din) for item in seen)
        coi_items = [(item, item.identifier) for item in seen if isinstance(item.identifier, Coi)]
        if bag_in_view or not coi_items:
            self._candidate = None
            return []
        coi = coi_items[0][1]
        wristband_qr = any(item.detection.text.startswith(WRISTBAND_QR_PREFIX) for item, _ in coi_items)
        if not wristband_qr:
            # A bare COI barcode alone could be a bag whose other codes were not read in this frame:
            # it counts as a wristband only after staying alone in view for the settle time.
            if self._candidate is None or self._candidate[0] != coi:
                self._candidate = (coi, t)
                return []
            if t - self._candidate[1] < self.wristband_settle:
                return []
        if coi == self.wristband:
            return []
        self.wristband = coi
        return [Verdict(Level.INFO, f"wristband {coi.eye_readable}: now scan the bag")]

    def _compare(self, unit: UnitId) -> Verdict:
        if self.wristband is None:
            return Verdict(Level.INFO, f"bag {unit.text}: scan the patient's wristband first")
        if unit.coi == self.wristband:
            return Verdict(
                Level.OK, f"COI MATCH: bag {unit.text} belongs to wristband {self.wristband.eye_readable}"
            )
        return Verdict(
            Level.STOP,
            f"COI MISMATCH: bag {unit.text} is for {unit.coi.eye_readable}, "
            f"wristband is {self.wristband.eye_readable}",
            "do not infuse",
        )
