"""Where to look in the next frame: around the last hit, and at the whole frame every few frames.

A label held to the camera stays roughly where it was between two frames, so after a hit the next
frames are decoded in a region around it: fewer pixels, and pyzbar's second opinion can run on every
frame while the region is small. Every ``full_every``-th pass covers the whole frame with both decoders,
so a code entering elsewhere is found; otherwise pyzbar runs only when its region is at most
``zbar_area`` of the frame, because over a whole frame it costs more than zxing-cpp (see
:mod:`scanner.decode`). That bounds the average cost per frame whatever the scene.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scanner.decode import Detection
from scanner.geometry import Rect, union_all


@dataclass(frozen=True, slots=True)
class Pass:
    """What to decode in one frame: ``region`` (None for the whole frame) and whether pyzbar runs too."""

    region: Rect | None
    zbar: bool


class RoiTracker:
    def __init__(
        self,
        *,
        full_every: int = 4,
        zbar_every: int = 8,
        hold: int = 8,
        margin_fraction: float = 0.25,
        min_margin: int = 48,
        zbar_area: float = 0.35,
    ) -> None:
        if full_every < 1 or zbar_every < 1 or hold < 0:
            raise ValueError("full_every and zbar_every must be >= 1, hold >= 0")
        self.full_every = full_every
        self.zbar_every = zbar_every
        self.hold = hold  # passes a region is kept after its last hit
        self.margin_fraction = margin_fraction  # motion allowance, relative to the region's size
        self.min_margin = min_margin
        self.zbar_area = zbar_area
        self._passes = 0
        self._region: Rect | None = None
        self._last_hit = -1

    @property
    def region(self) -> Rect | None:
        return self._region

    def plan(self, frame: Rect) -> Pass:
        """The pass for the next frame (counted in decoded frames, so dropped frames do not matter)."""
        full = self._passes % self.full_every == 0
        zbar = self._passes % self.zbar_every == 0
        tracking = self._region is not None and self._passes - self._last_hit <= self.hold
        if not tracking:
            self._region = None
        if self._region is None or full:
            return Pass(None, zbar=zbar)
        return Pass(self._region, zbar=zbar or self._region.area <= self.zbar_area * frame.area)

    def update(self, detections: Sequence[Detection], frame: Rect) -> None:
        """Record the result of the pass :meth:`plan` returned last."""
        hit = union_all(d.bbox for d in detections)
        if hit is not None:
            margin = max(self.min_margin, int(self.margin_fraction * max(hit.width, hit.height)))
            self._region = hit.expand(margin, frame)
            self._last_hit = self._passes
        self._passes += 1
