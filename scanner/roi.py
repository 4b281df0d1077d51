"""Where to look in the next frame: around the last hit, and at the whole frame every few frames.

A label held to the camera stays roughly where it was between two frames, so after a hit the next
frames are decoded in a region around it: fewer pixels, and pyzbar's second opinion can run on every
frame while the region is small. Every ``full_every``-th pass covers the whole frame with both decoders,
so a code entering elsewhere is found; otherwise pyzbar runs only when its region is at most
``zbar_area`` of the frame, because over a whole frame it costs more than zxing-cpp (see
:mod:`scanner.decode`). That bounds the average cost per frame whatever the scene.

Two exceptions keep reads the region would lose and the cost within bounds:

* **Full-frame fallback.** A region is read at full resolution while the whole frame is shrunk (and so
  averaged) first; in a dark, noisy picture the shrunk frame reads a label its region does not (measured:
  23 of 75 dark frames read with tracking against 75 of 75 whole frames). When region passes have found
  nothing for ``fallback_seconds`` while whole-frame passes still find the label, every pass reads the
  whole frame until the label is gone.
* **The costly reads take turns.** The unblurred Data Matrix read and the inverted read cost about 9
  and 2 ms more on a noisy 720p frame with no code at all. With nothing tracked (every pass reads the
  whole frame), only every ``thorough_every``-th pass makes them, the first one always: a Data Matrix of
  2 px modules or an inverted QR code coming into view is found at most two frames late. While a label
  is tracked, every pass reads inverted too (about 0.5 ms on a label's region), and the unblurred Data
  Matrix read is made on every pass while a Data Matrix was read within ``hold`` passes, else on every
  ``thorough_every``-th pass (on a bag label's region it costs 4 ms against 2 ms blurred).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scanner.decode import Detection
from scanner.geometry import Rect, union_all


@dataclass(frozen=True, slots=True)
class Pass:
    """What to decode in one frame: ``region`` (None for the whole frame), whether pyzbar runs too, and
    whether the costly reads are made: inverted codes, Data Matrix on unblurred pixels."""

    region: Rect | None
    zbar: bool
    invert: bool = True
    raw_matrix: bool = True

    @property
    def thorough(self) -> bool:
        return self.invert and self.raw_matrix


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
        fallback_seconds: float = 1.0,
        thorough_every: int = 3,
    ) -> None:
        if full_every < 1 or zbar_every < 1 or hold < 0 or thorough_every < 1:
            raise ValueError("full_every, zbar_every and thorough_every must be >= 1, hold >= 0")
        self.full_every = full_every
        self.zbar_every = zbar_every
        self.hold = hold  # passes a region is kept after its last hit
        self.margin_fraction = margin_fraction  # motion allowance, relative to the region's size
        self.min_margin = min_margin
        self.zbar_area = zbar_area
        self.fallback_seconds = fallback_seconds
        self.thorough_every = thorough_every
        self._passes = 0
        self._region: Rect | None = None
        self._last_hit = -1
        self._planned: Pass | None = None
        self._planned_t: float | None = None
        self._region_miss_since: float | None = None  # first region pass without a hit, since one had
        self._fallback = False  # region passes stopped reading this label: read whole frames
        self._searching = 0  # consecutive passes with nothing tracked
        self._tracking = 0  # consecutive passes with a label tracked
        self._last_matrix: int | None = None  # the last pass that read a Data Matrix

    @property
    def region(self) -> Rect | None:
        return self._region

    @property
    def fallback(self) -> bool:
        return self._fallback

    def plan(self, frame: Rect, t: float | None = None) -> Pass:
        """The pass for the next frame (counted in decoded frames, so dropped frames do not matter).
        ``t``, the frame's time in seconds, enables the full-frame fallback."""
        full = self._passes % self.full_every == 0
        zbar = self._passes % self.zbar_every == 0
        tracking = self._region is not None and self._passes - self._last_hit <= self.hold
        if not tracking:
            self._region = None
            self._fallback = False
            self._region_miss_since = None
        if (
            t is not None
            and self._region_miss_since is not None
            and t - self._region_miss_since >= self.fallback_seconds
        ):
            self._fallback = True
        if self._region is None:
            turn = self._searching % self.thorough_every == 0
            plan = Pass(None, zbar=zbar, invert=turn, raw_matrix=turn)
        else:
            matrix = self._last_matrix is not None and self._passes - self._last_matrix <= self.hold
            raw_matrix = matrix or self._tracking % self.thorough_every == 0
            if full or self._fallback:
                plan = Pass(None, zbar=zbar, raw_matrix=raw_matrix)
            else:
                small = self._region.area <= self.zbar_area * frame.area
                plan = Pass(self._region, zbar=zbar or small, raw_matrix=raw_matrix)
        self._planned = plan
        self._planned_t = t
        return plan

    def update(self, detections: Sequence[Detection], frame: Rect) -> None:
        """Record the result of the pass :meth:`plan` returned last."""
        planned = self._planned
        hit = union_all(d.bbox for d in detections)
        if planned is not None and planned.region is not None:
            # A region pass: its misses start (or continue) the fallback clock, a hit stops it.
            if hit is not None:
                self._region_miss_since = None
            elif self._region_miss_since is None:
                self._region_miss_since = self._planned_t
        if planned is not None and planned.region is None and self._region is None:
            self._searching += 1
        elif self._region is not None:
            self._tracking += 1
        if any(d.symbology == "datamatrix" for d in detections):
            self._last_matrix = self._passes
        if hit is not None:
            margin = max(self.min_margin, int(self.margin_fraction * max(hit.width, hit.height)))
            if self._region is None:
                self._tracking = 0
            self._region = hit.expand(margin, frame)
            self._last_hit = self._passes
            self._searching = 0
        self._passes += 1
