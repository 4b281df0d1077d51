"""Frames from a camera, a device path, a stream URL, a video file or a still image, via OpenCV.

Live sources (camera, device, stream) stamp frames with the monotonic clock and are read as fast as they
deliver; a stream that breaks is reopened with backoff. Files are stamped with their own timeline
(video position, or 0 for an image) so results do not depend on how fast they are decoded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from scanner.decode import Image
from scanner.pipeline import Frame


class SourceKind(StrEnum):
    CAMERA = "camera"  # an index (0) or a device path (/dev/video2)
    STREAM = "stream"  # rtsp://, http(s):// ...
    VIDEO = "video"
    IMAGE = "image"


class SourceError(Exception):
    """The source cannot be opened or read."""


@dataclass(frozen=True, slots=True)
class Source:
    kind: SourceKind
    target: str

    @property
    def live(self) -> bool:
        return self.kind in (SourceKind.CAMERA, SourceKind.STREAM)

    def describe(self) -> str:
        return f"{self.kind} {self.target}"


def _capture(target: str | int) -> Any:
    import cv2

    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"cannot open {target!r}")
    return capture


def _camera_target(target: str) -> str | int:
    return int(target) if target.isdigit() else target


def _read_image(path: str) -> Image:
    import cv2

    if not Path(path).is_file():
        raise SourceError(f"no such image: {path}")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"cannot read image {path}")
    return np.asarray(image, np.uint8)


def frames(source: Source, stop: threading.Event | None = None) -> Iterator[Frame]:
    """Frames of ``source`` until it ends (files) or ``stop`` is set (live sources run until then)."""
    stop = stop or threading.Event()
    if source.kind is SourceKind.IMAGE:
        yield Frame(0, 0.0, _read_image(source.target))
        return
    if source.kind is SourceKind.VIDEO:
        if not Path(source.target).is_file():
            raise SourceError(f"no such video: {source.target}")
        yield from _file_frames(_capture(source.target), stop)
        return
    target = _camera_target(source.target) if source.kind is SourceKind.CAMERA else source.target
    yield from _live_frames(target, source.kind is SourceKind.STREAM, stop)


def _file_frames(capture: Any, stop: threading.Event) -> Iterator[Frame]:
    import cv2

    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    index = 0
    try:
        while not stop.is_set():
            ok, image = capture.read()
            if not ok:
                return
            # The container's frame rate gives exact times; CAP_PROP_POS_MSEC is not reliable for all codecs.
            t = index / fps if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield Frame(index, t, image)
            index += 1
    finally:
        capture.release()


def _live_frames(target: str | int, reconnect: bool, stop: threading.Event) -> Iterator[Frame]:
    import cv2

    capture = _capture(target)
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of stale ones
    index = 0
    failures = 0
    delay = 0.5
    try:
        while not stop.is_set():
            ok, image = capture.read()
            if ok:
                failures, delay = 0, 0.5
                yield Frame(index, time.monotonic(), image)
                index += 1
                continue
            failures += 1
            if not reconnect and failures >= 50:
                raise SourceError(f"camera {target!r} stopped delivering frames")
            if reconnect:
                capture.release()
                stop.wait(delay)
                delay = min(10.0, delay * 2)
                try:
                    capture = _capture(target)
                except SourceError:
                    continue
            else:
                stop.wait(0.02)
    finally:
        capture.release()
