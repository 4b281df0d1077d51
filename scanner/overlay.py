"""The on-screen view: boxes around decoded codes and an OK / STOP banner, when a display exists."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Final

import numpy as np

from scanner.decode import Image
from scanner.parse import Foreign, Interpretation, Parsed, Rejected
from scanner.verdict import Level, Verdict

WINDOW: Final = "Celltrail scan"
# BGR colours: green accepted, red rejected/STOP, grey foreign, amber waiting.
COLOURS: Final = {
    Level.OK: (60, 180, 60),
    Level.STOP: (40, 40, 220),
    Level.WAIT: (0, 170, 255),
    Level.INFO: (200, 200, 200),
}
BANNER_TEXT: Final = {Level.OK: "OK", Level.STOP: "STOP", Level.WAIT: "WAIT", Level.INFO: ""}


def display_available() -> bool:
    """True when a window can be shown: a display server, and an OpenCV build with a GUI backend
    (the opencv-python-headless wheel has none)."""
    has_server = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not has_server:
        return False
    import cv2

    info = cv2.getBuildInformation()
    gui = next((line for line in info.splitlines() if line.strip().startswith("GUI:")), "GUI: NONE")
    return "NONE" not in gui.upper()


def _box_colour(item: Interpretation) -> tuple[int, int, int]:
    match item:
        case Parsed():
            return COLOURS[Level.OK]
        case Rejected():
            return COLOURS[Level.STOP]
        case Foreign():
            return (140, 140, 140)


def draw(frame: Image, items: Sequence[Interpretation], verdict: Verdict | None) -> Image:
    """A copy of ``frame`` with every code outlined and the current verdict as a banner."""
    import cv2

    canvas = (
        frame.copy() if frame.ndim == 3 else np.asarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), np.uint8)
    )
    for item in items:
        points = np.array(item.detection.polygon, np.int32).reshape(-1, 1, 2)
        colour = _box_colour(item)
        cv2.polylines(canvas, [points], isClosed=True, color=colour, thickness=3)
        x, y = item.detection.polygon[0]
        label = item.detection.text[:40] if isinstance(item, Parsed) else "rejected"
        cv2.putText(canvas, label, (x, max(15, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    if verdict is not None:
        height = max(40, canvas.shape[0] // 9)
        colour = COLOURS[verdict.level]
        cv2.rectangle(canvas, (0, 0), (canvas.shape[1], height), colour, thickness=-1)
        text = " ".join(part for part in (BANNER_TEXT[verdict.level], verdict.message) if part)
        scale = height / 60
        cv2.putText(canvas, text[:90], (10, int(height * 0.7)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2)
    return canvas


class Window:
    """An OpenCV window; ``show`` returns False when the operator closed it or pressed q / Esc."""

    def __init__(self) -> None:
        import cv2

        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)

    def show(self, image: Image) -> bool:
        import cv2

        cv2.imshow(WINDOW, image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1

    def close(self) -> None:
        import cv2

        cv2.destroyWindow(WINDOW)
