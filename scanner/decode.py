"""Frame -> detections. Pure: the same pixels always give the same detections; no state, no I/O.

Two decoders sit behind :func:`decode`:

* **zxing-cpp runs first, on every pass.** Measured (``python -m bench.decode``) it takes about half of
  pyzbar's time on the same frame with every read it can make (inverted codes, Data Matrix unblurred)
  and a quarter without them, reads Data Matrix (pyzbar cannot), reports the symbology identifier that
  marks GS1 data (``]d2``, ``]C1``, ``]Q3``) and reads far more of the damaged test images (64.6 % of
  the codes against 37.0 %).
* **pyzbar reads Code 128 only, as a second opinion** over the same pixels, when the caller asks for it.
  Every code pyzbar read that zxing-cpp missed in the difficult set was a Code 128 (blurred, or at
  1.4-2 px per module). Measured again for issue 19 (``python -m bench.decode``): on the 540 codes of
  the difficult set it adds 7 correct reads (64.6 % -> 65.9 %) and no misread; on the scanner's test
  videos it reads the wristband's thin COI Code 128 in 8 frames where zxing-cpp did not (the frames in
  which the wristband is first cross-checked) and misreads nothing. So it stays, for Code 128 only; its
  QR reader adds nothing and is not run. Its reads are merged by position and symbology
  (:func:`merge`): a pyzbar read of a symbol zxing-cpp also read is dropped whatever its text, so a
  misread of one symbol can never become a second code. Over a noisy 720p frame it still costs several
  times zxing-cpp's pass, so it scans every third pixel row and column (:data:`ZBAR_SCAN_DENSITY`), and
  the pipeline runs it every frame on small regions only, and over the whole frame every 8th frame (see
  :mod:`scanner.roi`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scanner.geometry import Point, Rect, bounding_rect

Image = npt.NDArray[np.uint8]

# Symbology identifiers (ISO/IEC 15424) that announce GS1 data: the text is kept with its identifier so
# the parser knows the FNC1 semantics (a plain Code 128 could never carry them).
GS1_SYMBOLOGY_IDS: Final = ("]C1", "]d2", "]Q3", "]e0", "]J1")

# The symbologies on Celltrail, ISBT 128 and GS1 logistics labels; fewer formats make zxing-cpp faster.
SYMBOLOGIES: Final = ("code128", "qr", "datamatrix")

# What a pass reads is shrunk first when its longer side exceeds this, so a 1080p or 4K camera costs
# about what a 720p one does (both decoders scale with the pixel count). A small region around an
# earlier hit is read at full resolution, which recovers small modules once a label is in view.
DEFAULT_MAX_SIDE: Final = 1280


@dataclass(frozen=True, slots=True)
class Detection:
    """One decoded symbol. ``text`` is the symbol's content; GS1 symbols keep their symbology identifier
    in front (``]d2000761...``); ``polygon`` is in the coordinates of the frame given to :func:`decode`."""

    text: str
    symbology: str
    polygon: tuple[Point, ...]
    decoder: str
    gs1: bool = False

    @property
    def bbox(self) -> Rect:
        return bounding_rect(self.polygon)


@dataclass(frozen=True, slots=True)
class View:
    """The pixels a decoder reads: part of a frame, possibly shrunk, and how to map points back."""

    image: Image
    x0: int = 0
    y0: int = 0
    scale: float = 1.0

    def to_frame(self, x: float, y: float) -> Point:
        return (self.x0 + round(x / self.scale), self.y0 + round(y / self.scale))


def to_gray(frame: Image) -> Image:
    """Single-channel view of ``frame``: both decoders binarise luminance, so colour only costs time."""
    if frame.ndim == 2:
        return frame
    import cv2

    code = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return np.asarray(cv2.cvtColor(frame, code), np.uint8)


def frame_rect(gray: Image) -> Rect:
    return Rect(0, 0, int(gray.shape[1]), int(gray.shape[0]))


def view_of(gray: Image, region: Rect | None = None, max_side: int = DEFAULT_MAX_SIDE) -> View:
    """``region`` of ``gray`` (the whole frame if None), shrunk when its longer side exceeds ``max_side``."""
    full = frame_rect(gray)
    view = View(gray)
    if region is not None and not region.contains(full):
        clipped = Rect(max(0, region.x0), max(0, region.y0), min(full.x1, region.x1), min(full.y1, region.y1))
        crop = np.ascontiguousarray(gray[clipped.y0 : clipped.y1, clipped.x0 : clipped.x1])
        view = View(crop, clipped.x0, clipped.y0)
    if max(view.image.shape) <= max_side:
        return view
    import cv2

    scale = max_side / max(view.image.shape)
    small = np.asarray(
        cv2.resize(view.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8
    )
    return View(small, view.x0, view.y0, scale)


def _zxing_symbology(name: str) -> str:
    compact = name.lower().replace(" ", "").replace("-", "")
    return {"code128": "code128", "qrcode": "qr", "datamatrix": "datamatrix"}.get(compact, compact)


def _zxing(view: View, image: Image, formats: list[Any], *, invert: bool = False) -> list[Detection]:
    import zxingcpp

    results = zxingcpp.read_barcodes(
        image,
        formats=zxingcpp.BarcodeFormats(formats),
        try_rotate=True,
        try_downscale=True,
        try_invert=invert,
        text_mode=zxingcpp.TextMode.Plain,
    )
    detections: list[Detection] = []
    for result in results:
        if not result.valid or not result.text:
            continue
        position = result.position
        corners = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
        polygon = tuple(view.to_frame(point.x, point.y) for point in corners)
        symbology_id = str(result.symbology_identifier)
        gs1 = symbology_id in GS1_SYMBOLOGY_IDS
        text = symbology_id + result.text if gs1 else result.text
        detections.append(Detection(text, _zxing_symbology(str(result.format)), polygon, "zxing", gs1))
    return detections


def read_zxing(view: View, *, invert: bool = True, raw_matrix: bool = True) -> list[Detection]:
    """zxing-cpp in plain text mode: its default "HRI" mode rewrites GS1 data as ``(00)...`` for people,
    which is not what the symbol holds.

    ``invert`` reads QR (and Code 128) light-on-dark too: a QR printed inverted (white on a dark
    sleeve, a phone in dark mode) is otherwise invisible. ``raw_matrix`` reads Data Matrix on the
    unblurred pixels first; without it, or when that finds none, after a 3x3 blur. The blur calms sensor
    noise, on which the Data Matrix finder chases speckle (9 ms instead of under 1 ms on a noisy 720p
    frame without a code), but it also erases modules of 2 px: asset and shipment Data Matrix at 2 px
    per module read 1/20 and 0/20 with the blurred read alone, against 20/20 and 17/20 for zxing-cpp
    alone. :mod:`scanner.roi` decides when the costly reads are worth making.
    """
    import cv2
    import zxingcpp

    formats = zxingcpp.BarcodeFormat
    found = _zxing(view, view.image, [formats.Code128, formats.QRCode], invert=invert)
    if raw_matrix:
        matrices = _zxing(view, view.image, [formats.DataMatrix])
        if matrices:
            return found + matrices
    # Heavily blurred or noisy Data Matrix with larger modules read better smoothed: the blurred read
    # comes second, and is cheap beside the full read (bench/decode.py).
    smooth = np.asarray(cv2.GaussianBlur(view.image, (3, 3), 0), np.uint8)
    return found + _zxing(view, smooth, [formats.DataMatrix])


def read_zbar(view: View) -> list[Detection]:
    """pyzbar (zbar), Code 128 only. zbar cannot tell GS1-128 from plain Code 128, so its texts never
    carry a symbology identifier."""
    results = _zbar_code128(view.image)
    detections: list[Detection] = []
    for result in results:
        text = bytes(result.data).decode("utf-8", errors="replace")
        if not text:
            continue
        polygon = tuple(view.to_frame(p.x, p.y) for p in result.polygon)
        detections.append(Detection(text, "code128", polygon, "zbar"))
    return detections


# zbar scans every pixel row and column by default. A Code 128 bar is many rows tall, so every third row
# and column finds the same codes on the difficult set in about half the time (bench/decode.py; figures
# in docs/benchmarks.md).
ZBAR_SCAN_DENSITY: Final = 3


def _zbar_code128(image: Image) -> list[Any]:
    """pyzbar's ``decode`` for Code 128 alone, with the scan density set: pyzbar does not expose that
    setting, so this drives its ctypes wrapper the way ``pyzbar.decode`` does (pyzbar is pinned)."""
    from pyzbar import pyzbar
    from pyzbar.wrapper import ZBarConfig, ZBarSymbol, zbar_image_scanner_set_config

    pixels, width, height = pyzbar._pixel_data(image)
    with pyzbar._image_scanner() as scanner:
        zbar_image_scanner_set_config(scanner, ZBarSymbol.NONE, ZBarConfig.CFG_ENABLE, 0)
        zbar_image_scanner_set_config(scanner, ZBarSymbol.CODE128, ZBarConfig.CFG_ENABLE, 1)
        for axis in (ZBarConfig.CFG_X_DENSITY, ZBarConfig.CFG_Y_DENSITY):
            zbar_image_scanner_set_config(scanner, ZBarSymbol.NONE, axis, ZBAR_SCAN_DENSITY)
        with pyzbar._image() as img:
            pyzbar.zbar_image_set_format(img, pyzbar._FOURCC["L800"])
            pyzbar.zbar_image_set_size(img, width, height)
            pyzbar.zbar_image_set_data(img, pyzbar.cast(pixels, pyzbar.c_void_p), len(pixels), None)
            if pyzbar.zbar_scan_image(scanner, img) < 0:
                raise pyzbar.PyZbarError("Unsupported image format")
            return list(pyzbar._decode_symbols(pyzbar._symbols_for_image(img)))


def same_symbol(a: Detection, b: Detection) -> bool:
    """Whether ``a`` and ``b`` are reads of one printed symbol: same symbology, overlapping positions.
    Two decoders reading one symbol differently is a misread by one of them, never a second code."""
    if a.symbology != b.symbology:
        return False
    box_a, box_b = a.bbox, b.bbox
    # zbar's polygon is its scan line (a thin box), zxing-cpp's the symbol's corners: an overlap of the
    # boxes, grown by a pixel for the thin line, is the test, not a ratio of areas.
    return (
        box_a.x0 <= box_b.x1 + 1
        and box_b.x0 <= box_a.x1 + 1
        and box_a.y0 <= box_b.y1 + 1
        and box_b.y0 <= box_a.y1 + 1
    )


def merge(primary: list[Detection], secondary: list[Detection]) -> list[Detection]:
    """``primary`` plus the detections of ``secondary`` at a place where primary read no symbol of the
    same type, in reading order (top to bottom, then left to right) so a frame always yields the same
    sequence. A secondary read of a symbol primary also read is dropped whatever its text: zxing-cpp's
    read is kept. A secondary text primary read elsewhere is dropped too (one code, not two)."""
    seen = {detection.text for detection in primary}
    seen_plain = {d.text[3:] for d in primary if d.gs1}
    extra = [
        d
        for d in secondary
        if d.text not in seen and d.text not in seen_plain and not any(same_symbol(d, p) for p in primary)
    ]
    return sorted([*primary, *extra], key=lambda d: (d.bbox.y0, d.bbox.x0, d.text))


def decode(
    frame: Image,
    *,
    region: Rect | None = None,
    zbar: bool = True,
    max_side: int = DEFAULT_MAX_SIDE,
    invert: bool = True,
    raw_matrix: bool = True,
) -> list[Detection]:
    """Every symbol in ``region`` of ``frame`` (the whole frame if None): zxing-cpp, then pyzbar's Code 128
    reader when ``zbar`` is set; a symbol both read is reported once, as zxing-cpp read it."""
    view = view_of(to_gray(frame), region, max_side)
    found = read_zxing(view, invert=invert, raw_matrix=raw_matrix)
    return merge(found, read_zbar(view) if zbar else [])
