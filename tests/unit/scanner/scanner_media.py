"""Test media for the scanner: rendered labels placed into camera-like frames, written as videos.

Labels come from ``labels.render_label`` (PNG -> numpy). A :class:`Placement` puts a label (or a crop of
it) into a frame at a centre, scale and angle; frames get optional blur and sensor noise; videos are
MJPG ``.avi`` files written with ``cv2.VideoWriter``, as a camera recording would be.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import zxingcpp

from celltrail_shared.identifiers import Coi, Din, LoggerId, ShipmentId, Sscc, UnitId, UnitKind
from labels.api import render_label
from labels.model import BagLabel, Label, ShipmentLabel, TemperatureProfile, WristbandLabel

Gray = npt.NDArray[np.uint8]
EXPIRY = datetime(2026, 3, 14, 23, 59, tzinfo=UTC)
COI_A = Coi("G1234", "26", "A1B2C3")
COI_B = Coi("G1234", "26", "Z9Y8X7")


def bag(coi: Coi = COI_A, number: int = 1) -> BagLabel:
    unit = UnitId(coi, UnitKind.FINAL_PRODUCT, number)
    return BagLabel(
        coi=coi, unit=unit, product="CAR-T cells", expiry=EXPIRY, din=Din.build("G1234", "26", "654321")
    )


def shipment(sequence: int = 123) -> ShipmentLabel:
    return ShipmentLabel(
        shipment=ShipmentId(2026, sequence),
        from_site="CRX-ZRH",
        to_site="HOSP-BSL",
        temperature_profile=TemperatureProfile.CRYO,
        sscc=Sscc.build("7612345", f"{sequence:09d}"),
        logger=LoggerId("T4X9002"),
    )


def wristband(coi: Coi = COI_A) -> WristbandLabel:
    return WristbandLabel(coi=coi)


@functools.lru_cache(maxsize=32)
def _render(label: Label, dpi: int) -> bytes:
    return render_label(label, "png", dpi=dpi)


def label_image(label: Label, dpi: int = 203) -> Gray:
    data = np.frombuffer(_render(label, dpi), np.uint8)
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE), np.uint8)


def symbol_box(image: Gray, text: str) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the symbol whose plain-text content is ``text`` in a rendered label."""
    for result in zxingcpp.read_barcodes(image, text_mode=zxingcpp.TextMode.Plain):
        if result.text == text:
            p = result.position
            xs = [p.top_left.x, p.top_right.x, p.bottom_right.x, p.bottom_left.x]
            ys = [p.top_left.y, p.top_right.y, p.bottom_right.y, p.bottom_left.y]
            return min(xs), min(ys), max(xs) + 1, max(ys) + 1
    raise LookupError(f"no symbol {text!r} on this label")


def crop(image: Gray, box: tuple[int, int, int, int], margin: int) -> Gray:
    x0, y0, x1, y1 = box
    height, width = image.shape
    return np.ascontiguousarray(
        image[max(0, y0 - margin) : min(height, y1 + margin), max(0, x0 - margin) : min(width, x1 + margin)]
    )


@dataclass(frozen=True)
class Placement:
    image: Gray
    x: float  # centre, frame pixels
    y: float
    scale: float = 1.0
    angle: float = 0.0  # degrees, counter-clockwise

    def matrix(self) -> npt.NDArray[np.float64]:
        height, width = self.image.shape
        m = cv2.getRotationMatrix2D((width / 2, height / 2), self.angle, self.scale)
        m[0, 2] += self.x - width / 2
        m[1, 2] += self.y - height / 2
        return np.asarray(m, np.float64)

    def corners(self, inner: tuple[int, int, int, int] | None = None) -> npt.NDArray[np.float64]:
        """Frame coordinates of the image's corners (or of ``inner``, a box in image pixels)."""
        height, width = self.image.shape
        x0, y0, x1, y1 = inner or (0, 0, width, height)
        points = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], np.float64)
        return np.asarray(points @ self.matrix().T, np.float64)

    def inside(self, size: tuple[int, int], inner: tuple[int, int, int, int] | None = None) -> bool:
        corners = self.corners(inner)
        width, height = size
        return bool(
            (corners[:, 0] >= 0).all()
            and (corners[:, 0] <= width).all()
            and (corners[:, 1] >= 0).all()
            and (corners[:, 1] <= height).all()
        )


def compose(
    size: tuple[int, int],
    placements: Iterable[Placement],
    *,
    blur: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    background: int = 96,
) -> npt.NDArray[np.uint8]:
    """A BGR frame of ``size`` (width, height) with every placement pasted on a plain desk."""
    width, height = size
    canvas = np.full((height, width), float(background), np.float32)
    for placement in placements:
        matrix = placement.matrix()
        warped = cv2.warpAffine(
            placement.image.astype(np.float32), matrix, (width, height), flags=cv2.INTER_AREA
        )
        mask = cv2.warpAffine(np.ones(placement.image.shape, np.float32), matrix, (width, height))
        canvas = canvas * (1 - mask) + warped * mask
    if blur > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), blur)
    if noise > 0:
        canvas += np.random.default_rng(seed).normal(0, noise, canvas.shape).astype(np.float32)
    gray = np.asarray(canvas.clip(0, 255), np.uint8)
    return np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), np.uint8)


def write_video(path: Path, frames: Sequence[npt.NDArray[np.uint8]], fps: float) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path
