"""What a scan means in each workflow mode. Pure: parsed codes in, steps to record and verdicts out.

Custody modes (``pickup``, ``handover``, ``receive``, ``store``) turn newly reported codes into
:class:`Submit` steps for the backend; the backend decides whether the step is allowed.
``bedside-verify`` never talks to the backend: the wristband/bag COI comparison is computed here so it
works offline; a bag of an allogeneic batch is compared through the allocation book the scanner fetched
while online (:mod:`scanner.allocations`).

Bedside identity is by symbol, not by text: which labels a frame shows, and whether each is consistent.

A bare COI is printed on both the wristband and the bag, so its text cannot say which label it came from:
a bag's COI Code 128 alone in view once passed for a wristband and matched its own bag. Labels are
therefore recognised by their *anchor* symbols only:

* a **wristband** by its QR code with a Celltrail COI payload (``CT1:COI:<COI>``): ``labels`` prints that
  payload on wristbands only (a bag's QR carries its unit, ``CT1:UNIT:...``; the scanner's tests render
  every label kind and check that this stays so);
* a **bag** by its unit's own symbol, the unit id: its ``CT1:UNIT:...`` QR code, or, when no bag's QR
  code is near, the unit id in a linear symbol (a bag without a DIN prints it as a Code 128).

An anchor's size is its longest side for a 2-D symbol, its bar height for a linear one: a Code 128 unit
id is about 70 mm wide, and sized by its width it reached the COI Code 128 of a wristband held below the
bag, so the frame was discarded.

A unit id in a linear symbol near a bag's QR code (within :data:`ASSIGN_DISTANCE` QR sizes) is one of
that bag's symbols and must name the same unit. Every other symbol (the COI Code 128, the DIN) belongs
to the nearest anchor within :data:`ASSIGN_DISTANCE` anchor sizes and must agree with it: the same COI,
one DIN per bag, no DIN on a wristband, no damaged (rejected) look-alike. If any label disagrees, the
whole frame is discarded: a misread must never turn into a STOP or a MATCH. A symbol near no anchor
identifies nothing.

A MATCH or a STOP needs a wristband and a bag, each confirmed in at least two frames (:class:`Confirmer`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from celltrail_shared.identifiers import Coi, Din, ShipmentId, Sscc, UnitId
from scanner import allocations
from scanner.allocations import AllocationBook
from scanner.decode import Detection
from scanner.geometry import Rect
from scanner.parse import Parsed, display_text
from scanner.verdict import Level, Verdict


class Mode(StrEnum):
    PICKUP = "pickup"
    HANDOVER = "handover"
    RECEIVE = "receive"
    STORE = "store"
    BEDSIDE_VERIFY = "bedside-verify"


CUSTODY_MODES: Final = frozenset({Mode.PICKUP, Mode.HANDOVER, Mode.RECEIVE, Mode.STORE})


@dataclass(frozen=True, slots=True)
class Submit:
    """A custody step to record: the body fields of ``POST /api/v1/scans`` the workflow decides."""

    action: str
    codes: tuple[str, ...]
    subject: str  # what the operator sees, e.g. "shipment SHP-2026-000123"
    handover_to: str | None = None
    storage_location: str | None = None
    item: str = ""  # what was scanned, whichever symbol carried it (identity keys): one pending scan each


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
        confirm_frames: int = 2,
        confirm_gap: float = 1.0,
        allocations: AllocationBook | None = None,
    ) -> None:
        if mode is Mode.HANDOVER and not handover_to:
            raise ValueError("handover needs the receiving user (--handover-to USERNAME)")
        if mode is Mode.STORE and not storage_location:
            raise ValueError("store needs where the bag goes (--storage-location TEXT)")
        self.mode = mode
        # What this scanner knows offline of the allocations of bags of allogeneic batches.
        self.allocations = allocations
        self.handover_to = handover_to
        self.storage_location = storage_location
        self.shipment: Parsed | None = None  # the last shipment scanned in this session (receive)
        self._submitted: set[str] = set()  # container keys already recorded this session
        self.wristband: Coi | None = None  # the confirmed wristband
        self.bag: UnitId | None = None  # the last confirmed bag
        self._bag_seen = -math.inf  # when a confirmed bag's label was last read
        self._confirmer = Confirmer(frames=confirm_frames, gap=confirm_gap)
        self._rejected = Confirmer(frames=confirm_frames, gap=confirm_gap)
        self.discarded = 0  # bedside frames discarded because symbols on one label disagreed
        self._told_disagreement = -math.inf

    def on_frame(
        self,
        t: float,
        seen: Sequence[Parsed],
        reported: Sequence[Parsed],
        rejected: Sequence[Detection] = (),
    ) -> list[Step]:
        """``seen``: every identifier decoded in the frame at ``t``; ``reported``: those of them the
        debouncer let through (new sightings); ``rejected``: damaged look-alikes in the frame (bedside
        only: other modes stop on them before the workflow)."""
        if self.mode is Mode.BEDSIDE_VERIFY:
            return self._bedside(t, seen, rejected)
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
                Submit(
                    "store",
                    (item.detection.text,),
                    f"bag {unit}",
                    storage_location=self.storage_location,
                    item=item.key,
                )
            ]
        if self.mode is Mode.RECEIVE:
            if self.shipment is None:
                return [Verdict(Level.INFO, f"bag {unit}: scan its shipment label first")]
            return [
                Submit(
                    "receive",
                    (self.shipment.detection.text, item.detection.text),
                    f"bag {unit} in {display_text(self.shipment.identifier)}",
                    item=f"{self.shipment.key} {item.key}",
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
        return [
            Submit(str(self.mode), (item.detection.text,), subject, handover_to=handover_to, item=item.key)
        ]

    # ------------------------------------------------------------------------------------ bedside

    def _bedside(self, t: float, seen: Sequence[Parsed], rejected: Sequence[Detection]) -> list[Step]:
        frame = read_labels(seen, rejected)
        if frame.disagreement is not None:
            # Never a STOP or a MATCH from such a frame, nor from the disputed label until it has left
            # the view; say why now and then, not every frame.
            self._confirmer.dispute(t, frame.disputed)
            self.discarded += 1
            if t - self._told_disagreement > 2.0:
                self._told_disagreement = t
                return [Verdict(Level.INFO, "label read ignored: its symbols disagree", frame.disagreement)]
            return []
        steps: list[Step] = []
        steps.extend(self._loose_rejected(t, frame.loose_rejected))
        confirmed = self._confirmer.see(t, frame.labels)
        if self.bag is not None and any(read.unit == self.bag for read in frame.labels):
            self._bag_seen = t
        bags = [read for read in confirmed if read.kind is LabelKind.BAG and read.unit is not None]
        for band in (read for read in confirmed if read.kind is LabelKind.WRISTBAND):
            if band.coi == self.wristband:
                continue
            self.wristband = band.coi
            if bags:
                continue  # compared with the bag confirmed in this frame below
            if self.bag is not None and t - self._bag_seen <= self._confirmer.gap:
                steps.append(self._compare(self.bag))  # the bag in view came first
            else:
                steps.append(Verdict(Level.INFO, f"wristband {band.coi.eye_readable}: now scan the bag"))
        for read in bags:
            if read.unit is None:
                continue
            self.bag = read.unit
            self._bag_seen = t
            steps.append(self._compare(read.unit))
        return steps

    def _loose_rejected(self, t: float, rejected: Sequence[Detection]) -> list[Step]:
        """A damaged look-alike on no recognised label stops the operator once it is read the same way
        in two frames: a single misread must not."""
        texts = {f"rejected:{detection.text}": detection.text for detection in rejected}
        return [
            Verdict(Level.STOP, f"REJECTED code {texts[key][:40]!r}", "damaged or unknown label")
            for key in self._rejected.see_keys(t, list(texts))
        ]

    def _compare(self, unit: UnitId) -> Verdict:
        if self.wristband is None:
            return Verdict(Level.INFO, f"bag {unit.text}: scan the patient's wristband first")
        return allocations.compare(self.allocations, unit, self.wristband)


# ------------------------------------------------------------------------------------ bedside identity

WRISTBAND_QR_PREFIX: Final = "CT1:COI:"
# Measured on the rendered labels: a bag's DIN Code 128 lies 1.9 QR sizes from its QR code, its COI
# Code 128 1.0; the wristband's COI Code 128 0.6 from the nearer QR and 5.2 from the other one.
ASSIGN_DISTANCE: Final = 2.5


class LabelKind(StrEnum):
    WRISTBAND = "wristband"
    BAG = "bag"


@dataclass(frozen=True, slots=True)
class LabelRead:
    """One label seen in one frame, all of its read symbols agreeing. ``checked``: its COI Code 128
    was read too and names the same COI as its anchor."""

    kind: LabelKind
    coi: Coi
    unit: UnitId | None = None
    din: Din | None = None
    checked: bool = False

    @property
    def key(self) -> str:
        return label_key(self.kind, self.unit.text if self.unit is not None else self.coi.value)


def label_key(kind: LabelKind, value: str) -> str:
    return f"{kind}:{value}"


@dataclass(frozen=True, slots=True)
class FrameLabels:
    """The labels of one frame. ``disagreement`` says why the frame is discarded (then ``labels`` is
    empty and ``disputed`` holds the keys of the labels whose symbols disagreed); ``loose_rejected``
    are damaged look-alikes on no recognised label."""

    labels: tuple[LabelRead, ...] = ()
    disagreement: str | None = None
    disputed: tuple[str, ...] = ()
    loose_rejected: tuple[Detection, ...] = ()


def is_wristband_symbol(item: Parsed) -> bool:
    return (
        item.detection.symbology == "qr"
        and isinstance(item.identifier, Coi)
        and item.detection.text.startswith(WRISTBAND_QR_PREFIX)
    )


def is_bag_symbol(item: Parsed) -> bool:
    return isinstance(item.identifier, UnitId)


# 2-D symbols: square-ish, sized by their longest side. Every other symbology is linear (or stacked).
MATRIX_SYMBOLOGIES: Final = frozenset({"qr", "datamatrix", "aztec"})


def is_linear(detection: Detection) -> bool:
    return detection.symbology not in MATRIX_SYMBOLOGIES


def symbol_size(detection: Detection) -> int:
    """How big an anchor symbol is, in pixels: a 2-D symbol's longest side, a linear symbol's bar height
    (the short side of its outline, measured along the symbol so that a tilted one is not its diagonal):
    a linear symbol's width grows with its text, not with the label."""
    box = detection.bbox
    if not is_linear(detection):
        return max(box.width, box.height, 1)
    points = detection.polygon
    if len(points) < 3:
        return max(min(box.width, box.height), 1)
    # The outline's width: across each of its edges, the farthest point from that edge's line; the
    # narrowest of these is the bar height of a rectangle at any tilt.
    narrowest = float(min(box.width, box.height))
    for (ax, ay), (bx, by) in zip(points, points[1:] + points[:1], strict=True):
        length = math.hypot(bx - ax, by - ay)
        if length == 0:
            continue
        across = max(abs((bx - ax) * (py - ay) - (by - ay) * (px - ax)) / length for px, py in points)
        narrowest = min(narrowest, across)
    return max(round(narrowest), 1)


def _gap(a: Rect, b: Rect) -> float:
    """Distance between two boxes (0 when they touch or overlap)."""
    dx = max(0, a.x0 - b.x1, b.x0 - a.x1)
    dy = max(0, a.y0 - b.y1, b.y0 - a.y1)
    return math.hypot(dx, dy)


@dataclass
class _Label:
    anchor: Parsed
    kind: LabelKind
    coi: Coi
    unit: UnitId | None
    dins: set[str]
    din: Din | None = None
    checked: bool = False

    @property
    def size(self) -> int:
        return symbol_size(self.anchor.detection)

    @property
    def key(self) -> str:
        return label_key(self.kind, self.unit.text if self.unit is not None else self.coi.value)


def _anchor(item: Parsed) -> _Label | None:
    if is_wristband_symbol(item) and isinstance(item.identifier, Coi):
        return _Label(item, LabelKind.WRISTBAND, item.identifier, None, set())
    if is_bag_symbol(item) and isinstance(item.identifier, UnitId):
        return _Label(item, LabelKind.BAG, item.identifier.coi, item.identifier, set())
    return None


def _nearest(labels: Sequence[_Label], box: Rect) -> _Label | None:
    best: tuple[float, _Label] | None = None
    for label in labels:
        relative = _gap(label.anchor.detection.bbox, box) / label.size
        if relative <= ASSIGN_DISTANCE and (best is None or relative < best[0]):
            best = (relative, label)
    return None if best is None else best[1]


def _discard(why: str, *labels: _Label) -> FrameLabels:
    return FrameLabels(disagreement=why, disputed=tuple(label.key for label in labels))


def read_labels(items: Sequence[Parsed], rejected: Sequence[Detection] = ()) -> FrameLabels:
    """The wristbands and bags in one frame's parsed symbols, or why the frame is discarded."""
    labels: list[_Label] = []
    others: list[Parsed] = []
    linear_units: list[_Label] = []
    for item in items:
        label = _anchor(item)
        if label is None:
            others.append(item)
        elif label.kind is LabelKind.BAG and is_linear(item.detection):
            linear_units.append(label)
        else:
            labels.append(label)
    # A unit id in a linear symbol near a bag's QR code is one of that label's symbols and must name its
    # unit; near none, it is the bag's anchor (its QR code unread), sized by its bar height.
    bag_qrs = [label for label in labels if label.kind is LabelKind.BAG]
    for label in linear_units:
        owner = _nearest(bag_qrs, label.anchor.detection.bbox)
        if owner is None:
            labels.append(label)
        elif label.unit != owner.unit:
            return _discard(
                f"unit id {label.anchor.detection.text[:40]!r} on the bag {owner.key}", owner, label
            )
    # Two anchors of the same kind on one spot that name different things are one label read two ways.
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            near = _gap(a.anchor.detection.bbox, b.anchor.detection.bbox) <= min(a.size, b.size)
            if near and a.kind is b.kind and (a.coi, a.unit) != (b.coi, b.unit):
                return _discard(f"{a.kind} symbols disagree: {a.coi.value} / {b.coi.value}", a, b)
    loose: list[Detection] = []
    for detection in rejected:
        owner = _nearest(labels, detection.bbox)
        if owner is not None:
            return _discard(f"a damaged symbol on the {owner.kind}: {detection.text[:40]!r}", owner)
        loose.append(detection)
    for item in others:
        owner = _nearest(labels, item.detection.bbox)
        if owner is None:
            continue
        match item.identifier:
            case Coi() as coi if coi != owner.coi:
                return _discard(f"COI {coi.value} on the {owner.kind} of {owner.coi.value}", owner)
            case Coi():
                owner.checked = True
            case Din() as din:
                if owner.kind is LabelKind.WRISTBAND:
                    return _discard(f"a DIN on the wristband of {owner.coi.value}", owner)
                owner.dins.add(din.value)
                owner.din = din
                if len(owner.dins) > 1:
                    return _discard(f"two DINs on the bag {owner.key}", owner)
            case _:
                pass  # another kind of code near a label (a shipment id, a logger) says nothing about it
    reads = tuple(LabelRead(label.kind, label.coi, label.unit, label.din, label.checked) for label in labels)
    return FrameLabels(reads, loose_rejected=tuple(loose))


@dataclass
class _Streak:
    last: float
    frames: int
    din: Din | None
    checked: bool = False
    disputed: bool = False
    confirmed: bool = False


class Confirmer:
    """A label counts once it was read in at least ``frames`` frames, each within ``gap`` seconds of the
    previous one, and its COI Code 128 was read agreeing in one of them (when ``cross_check``): a label
    is only known to agree once all of its identity symbols were read. A bag read with another DIN
    starts over; a label seen with disagreeing symbols is never confirmed until it has been out of view
    for ``gap`` (then it starts over: a misread may have been the cause)."""

    def __init__(self, *, frames: int = 2, gap: float = 1.0, cross_check: bool = True) -> None:
        if frames < 1 or gap <= 0:
            raise ValueError("frames must be >= 1 and gap > 0")
        self.frames = frames
        self.gap = gap
        self.cross_check = cross_check
        self._streaks: dict[str, _Streak] = {}

    def see(self, t: float, reads: Sequence[LabelRead]) -> list[LabelRead]:
        """Record one frame's labels; returns those confirmed by this frame (each once per streak)."""
        unique: dict[str, LabelRead] = {}
        for read in reads:  # both QR codes of one wristband: one label, checked if either is
            known = unique.get(read.key)
            unique[read.key] = read if known is None or read.checked else known
        sightings = [(key, read.din, read.checked) for key, read in unique.items()]
        return [unique[key] for key in self._see(t, sightings)]

    def see_keys(self, t: float, keys: Sequence[str]) -> list[str]:
        """:meth:`see` for plain keys (no cross-check)."""
        return self._see(t, [(key, None, True) for key in dict.fromkeys(keys)])

    def dispute(self, t: float, keys: Sequence[str]) -> None:
        """The labels ``keys`` were seen with disagreeing symbols at ``t``."""
        for key in keys:
            streak = self._streak(t, key, None)
            streak.disputed = True
            streak.last = t

    def _streak(self, t: float, key: str, din: Din | None) -> _Streak:
        streak = self._streaks.get(key)
        if streak is None or t - streak.last > self.gap:
            streak = self._streaks[key] = _Streak(t, 0, din)
        return streak

    def _see(self, t: float, sightings: Sequence[tuple[str, Din | None, bool]]) -> list[str]:
        confirmed: list[str] = []
        for key, din, checked in sightings:
            streak = self._streak(t, key, din)
            if streak.din is not None and din is not None and streak.din != din:
                disputed = streak.disputed
                streak = self._streaks[key] = _Streak(t, 0, din, disputed=disputed)
            streak.last = t
            streak.frames += 1
            streak.din = streak.din or din
            streak.checked = streak.checked or checked or not self.cross_check
            ready = streak.frames >= self.frames and streak.checked and not streak.disputed
            if ready and not streak.confirmed:
                streak.confirmed = True
                confirmed.append(key)
        stale = [key for key, streak in self._streaks.items() if t - streak.last > self.gap]
        for key in stale:
            del self._streaks[key]
        return confirmed
