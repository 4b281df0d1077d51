"""Decoding off the capture loop: a one-frame hand-over slot and the worker that drains it.

The camera delivers frames at its own pace; decoding a frame can take longer than one frame interval.
A live source therefore hands over through a slot that holds only the newest frame: when the worker is
busy, the older waiting frame is dropped (counted), so latency stays one frame and memory stays flat,
never an unbounded backlog. A file source (video, image) is not live: there the slot blocks the reader
instead, so every frame is decoded and results are reproducible.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from scanner.decode import DEFAULT_MAX_SIDE, Detection, Image, decode, frame_rect, to_gray
from scanner.roi import Pass, RoiTracker


@dataclass(frozen=True, slots=True)
class Frame:
    index: int  # position in the source (gaps where frames were dropped)
    t: float  # seconds: the source's own clock for files, monotonic time for live sources
    image: Image


@dataclass(frozen=True, slots=True)
class Decoded:
    frame: Frame
    detections: list[Detection]
    plan: Pass
    seconds: float


class FrameProcessor:
    """Decodes frames in order, choosing each frame's pass with a :class:`RoiTracker`."""

    def __init__(self, tracker: RoiTracker | None = None, max_side: int = DEFAULT_MAX_SIDE) -> None:
        self.tracker = tracker or RoiTracker()
        self.max_side = max_side

    def process(self, frame: Frame) -> Decoded:
        started = time.perf_counter()
        gray = to_gray(frame.image)
        bounds = frame_rect(gray)
        plan = self.tracker.plan(bounds, frame.t)
        detections = decode(
            gray,
            region=plan.region,
            zbar=plan.zbar,
            max_side=self.max_side,
            invert=plan.invert,
            raw_matrix=plan.raw_matrix,
        )
        self.tracker.update(detections, bounds)
        return Decoded(frame, detections, plan, time.perf_counter() - started)


class FrameSlot:
    """Holds at most one frame between the capture loop and the decode worker."""

    def __init__(self, *, drop: bool) -> None:
        self.drop = drop
        self.dropped = 0
        self._frame: Frame | None = None
        self._closed = False
        self._cond = threading.Condition()

    def put(self, frame: Frame) -> bool:
        """Offer ``frame``; False once the slot is closed. Live: replaces a waiting frame. File: waits."""
        with self._cond:
            if not self.drop:
                self._cond.wait_for(lambda: self._frame is None or self._closed)
            if self._closed:
                return False
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()
            return True

    def get(self) -> Frame | None:
        """The next frame, or None when the slot is closed and empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        """No more frames: the worker finishes the waiting one (if any) and stops."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """Stop now: the waiting frame is discarded."""
        with self._cond:
            self._closed = True
            self._frame = None
            self._cond.notify_all()


class DecodeWorker(threading.Thread):
    """Takes frames from ``slot``, decodes them, hands each result to ``on_decoded`` (in this thread)."""

    def __init__(
        self, slot: FrameSlot, processor: FrameProcessor, on_decoded: Callable[[Decoded], None]
    ) -> None:
        super().__init__(name="celltrail-decode", daemon=True)
        self.slot = slot
        self.processor = processor
        self.on_decoded = on_decoded
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (frame := self.slot.get()) is not None:
                self.on_decoded(self.processor.process(frame))
        except BaseException as exc:  # surfaced by the session after join(); a dead worker must not hang it
            self.error = exc
            self.slot.abort()
