"""Scanner decoding cost and robustness: pyzbar, zxing-cpp and the combined strategy the scanner uses.

Frames are synthetic camera scenes: a textured desk, a rendered bag label (300 dpi PNG from
``labels.render_label``) moving a few pixels per frame, and sensor noise. Figures:

* ms per frame at 640x480, 1280x720 and 1920x1080, label present and no label, for pyzbar alone (Code 128
  and QR, the symbologies it can read) and zxing-cpp alone (Code 128, QR, Data Matrix) over the whole
  frame, and the combined strategy (``scanner.pipeline.FrameProcessor``: zxing-cpp every frame, frames
  shrunk to 1280 px, region tracking, pyzbar's Code 128 second opinion on small regions and on every
  8th whole frame), averaged over a sequence of frames;
* the combined strategy's worst frame: both decoders over the whole frame (shrunk to 1280 px), which the
  pipeline does every 8th frame;
* the share of codes read on a set of damaged label images (scaled to 1.5-3 px per module, rotated,
  blurred, noisy, low contrast) by each decoder and by the combined full pass, and what pyzbar's Code 128
  second opinion adds there: correct reads zxing-cpp missed, its misreads, and the misreads left after
  merging (a second read of a symbol zxing-cpp read is dropped whatever its text).

Times are CPU time of the decoding thread, so a busy machine does not inflate them; on an idle core the
wall time is the same.

``run(smoke, frames)`` returns one dict per figure; ``python -m bench.decode [--smoke] [--frames N]``
prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import cv2
import numpy as np
import numpy.typing as npt

from celltrail_shared.identifiers import Coi, Din, LoggerId, ShipmentId, Sscc, UnitId, UnitKind
from labels.api import render_label
from labels.model import BagLabel, Label, ShipmentLabel, TemperatureProfile, WristbandLabel
from scanner.decode import Image, View, decode, read_zbar, read_zxing
from scanner.pipeline import Frame, FrameProcessor

RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080))
COI = Coi("G1234", "26", "A1B2C3")


def _labels() -> dict[str, Label]:
    unit = UnitId(COI, UnitKind.FINAL_PRODUCT, 1)
    return {
        "bag": BagLabel(
            coi=COI,
            unit=unit,
            product="CAR-T cells",
            expiry=datetime(2026, 3, 14, tzinfo=UTC),
            din=Din.build("G1234", "26", "654321"),
        ),
        "shipment": ShipmentLabel(
            shipment=ShipmentId(2026, 123),
            from_site="CRX-ZRH",
            to_site="HOSP-BSL",
            temperature_profile=TemperatureProfile.CRYO,
            sscc=Sscc.build("7612345", "000000001"),
            logger=LoggerId("T4X9002"),
        ),
        "wristband": WristbandLabel(coi=COI),
    }


def _png_gray(label: Label, dpi: int = 300) -> Image:
    data = np.frombuffer(render_label(label, "png", dpi=dpi), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise RuntimeError("the rendered PNG did not decode")
    return np.asarray(image, np.uint8)


def _desk(rng: np.random.Generator, width: int, height: int) -> npt.NDArray[np.float32]:
    texture = cv2.GaussianBlur(rng.normal(110, 25, (height, width)).astype(np.float32), (0, 0), 4)
    ramp = np.linspace(-20, 20, width, dtype=np.float32)[None, :]
    return np.asarray(texture + ramp, np.float32)


def _scene(rng: np.random.Generator, size: tuple[int, int], label: Image | None, shift: int) -> Image:
    width, height = size
    canvas = _desk(rng, width, height)
    if label is not None:
        scale = 0.55 * width / label.shape[1]  # the label spans about half the view, as held to a camera
        small = cv2.resize(label, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        y = (height - small.shape[0]) // 2 + shift % 7
        x = (width - small.shape[1]) // 2 + shift % 11
        canvas[y : y + small.shape[0], x : x + small.shape[1]] = small * 0.85 + 20
    canvas += rng.normal(0, 4, canvas.shape).astype(np.float32)
    return np.asarray(canvas.clip(0, 255), np.uint8)


def damage(
    label: Image, rng: np.random.Generator, *, scale: float, angle: float, blur: float, noise: float
) -> Image:
    """``label`` shrunk, rotated on a grey background, blurred, noisy and at 80 % contrast."""
    small = cv2.resize(label, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA).astype(np.float32)
    small = small * 0.8 + 25
    h, w = small.shape
    cos, sin = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    width, height = int(w * cos + h * sin) + 80, int(w * sin + h * cos) + 80  # rotated label + margin
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    matrix[0, 2] += (width - w) / 2
    matrix[1, 2] += (height - h) / 2
    out = cv2.warpAffine(small, matrix, (width, height), borderValue=128.0, flags=cv2.INTER_LINEAR)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    if noise:
        out += np.asarray(rng.normal(0, noise, out.shape), np.float32)
    return np.asarray(out.clip(0, 255), np.uint8)


def _pyzbar_alone(gray: Image) -> int:
    from pyzbar import pyzbar

    return len(pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.CODE128, pyzbar.ZBarSymbol.QRCODE]))


def _ms(work: Callable[[Image], object], frames: list[Image]) -> float:
    work(frames[0])  # warm-up outside the timing
    started = time.thread_time()
    for frame in frames:
        work(frame)
    return (time.thread_time() - started) * 1000 / len(frames)


def _combined_ms(frames: list[Image]) -> float:
    processor = FrameProcessor()
    processor.process(Frame(0, 0.0, frames[0]))
    processor = FrameProcessor()  # fresh tracker; the warm-up only loaded the libraries
    started = time.thread_time()
    for index, frame in enumerate(frames):
        processor.process(Frame(index, index / 15, frame))
    return (time.thread_time() - started) * 1000 / len(frames)


def _timing_figures(smoke: bool, bag: Image, frames: int = 60) -> list[dict[str, object]]:
    rng = np.random.default_rng(7)
    count = 3 if smoke else frames
    figures: list[dict[str, object]] = []
    for size in RESOLUTIONS:
        for present in (True, False):
            frames = [_scene(rng, size, bag if present else None, i) for i in range(count)]
            scene = "bag label present" if present else "no label"
            conditions = (
                f"{size[0]}x{size[1]} grey frames with sensor noise, {scene}, CPU time per frame "
                f"(thread time, one core), mean of {count} frames"
            )
            for name, value in (
                ("pyzbar (Code 128 + QR)", _ms(_pyzbar_alone, frames)),
                ("zxing-cpp", _ms(lambda g: read_zxing(View(g)), frames)),
                ("combined", _combined_ms(frames)),
                ("combined worst frame (both decoders, whole frame)", _ms(lambda g: decode(g), frames)),
            ):
                figures.append(
                    {
                        "figure": f"decode {size[0]}x{size[1]} {scene}: {name}",
                        "unit": "ms/frame",
                        "value": round(value, 2),
                        "conditions": conditions,
                    }
                )
    return figures


def _expected(label: Image) -> set[str]:
    # Read at full size: the wristband is wider than the 1280 px a whole-frame pass shrinks to, and its
    # Code 128 would otherwise be missing from what the damaged copies are expected to give.
    return {d.text for d in decode(label, zbar=True, max_side=max(label.shape))}


def _rate_figures(smoke: bool, labels: dict[str, Image]) -> list[dict[str, object]]:
    rng = np.random.default_rng(11)
    scales = (0.75, 1.5) if smoke else (0.75, 1.0, 1.5)  # 203 dpi: 1.5, 2 and 3 px per Code 128 module
    angles = (0, 25) if smoke else (0, 8, 25, 90)
    damages: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.0, 12.0))
    if not smoke:
        damages += ((1.0, 0.0), (0.0, 20.0), (1.8, 8.0))
    readers: dict[str, Callable[[Image], set[str]]] = {
        "pyzbar": lambda g: {d.text for d in read_zbar(View(g))} | _zbar_qr(g),
        "zxing-cpp": lambda g: {d.text for d in read_zxing(View(g))},
        # The same pixels as the single decoders: a whole-frame pass would shrink the larger images.
        "combined": lambda g: {d.text for d in decode(g, zbar=True, max_side=max(g.shape))},
    }
    found = dict.fromkeys(readers, 0)
    zbar_added = zbar_misread = combined_misread = 0  # what pyzbar's second opinion adds, right or wrong
    total = 0
    images = 0
    for label in labels.values():
        expected = _expected(label)
        for scale in scales:
            for angle in angles:
                for blur, noise in damages:
                    image = damage(label, rng, scale=scale, angle=angle, blur=blur, noise=noise)
                    images += 1
                    total += len(expected)
                    read = {name: reader(image) for name, reader in readers.items()}
                    for name, texts in read.items():
                        found[name] += len(texts & expected)
                    zbar = {d.text for d in read_zbar(View(image))}
                    zbar_added += len((zbar - read["zxing-cpp"]) & expected)
                    zbar_misread += len(zbar - expected)
                    combined_misread += len(read["combined"] - expected)
    conditions = (
        f"{images} images: bag, shipment and wristband labels at 1.5-3 px/module, rotated 0-90 deg, "
        f"blur sigma 0-1.8 px, noise sigma 0-20, 80 % contrast; {total} codes"
    )
    rates = [
        {
            "figure": f"decode rate, difficult images: {name}",
            "unit": "%",
            "value": round(100 * n / total, 1),
            "conditions": conditions,
        }
        for name, n in found.items()
    ]
    counts = [
        ("pyzbar Code 128 reads zxing-cpp missed (correct)", zbar_added),
        ("pyzbar Code 128 misreads", zbar_misread),
        ("combined misreads (after merging by position)", combined_misread),
    ]
    return rates + [
        {"figure": f"difficult images: {name}", "unit": "codes", "value": n, "conditions": conditions}
        for name, n in counts
    ]


def _zbar_qr(gray: Image) -> set[str]:
    from pyzbar import pyzbar

    return {bytes(r.data).decode() for r in pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE])}


def run(smoke: bool, frames: int = 60) -> list[dict[str, object]]:
    cv2.setNumThreads(1)
    labels = _labels()
    bag = _png_gray(labels["bag"])
    small = {name: _png_gray(label, dpi=203) for name, label in labels.items()}
    return _timing_figures(smoke, bag, frames) + _rate_figures(smoke, small)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="a few frames each: checks that it still runs")
    parser.add_argument(
        "--frames", type=int, default=60, metavar="N", help="frames per timing figure (default: 60)"
    )
    args = parser.parse_args()
    result = run(args.smoke, args.frames)
    for f in result:
        print(f"{f['figure']:<84} {f['value']:>8} {f['unit']}")
    print(json.dumps({"cpus": os.cpu_count(), "figures": result}, indent=2))
