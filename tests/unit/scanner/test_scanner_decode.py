"""The decoders behind scanner.decode: what each reads, GS1 texts, regions, downscaling, merging."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import zxingcpp
from scanner_media import Placement, compose, crop, label_image, shipment, wristband

from scanner.decode import (
    ZBAR_SCAN_DENSITY,
    Detection,
    View,
    decode,
    merge,
    read_zbar,
    read_zxing,
    to_gray,
    view_of,
)
from scanner.geometry import Rect
from scanner.parse import Parsed, interpret
from scanner.pipeline import Frame, FrameProcessor
from scanner.roi import RoiTracker


def _texts(detections: list[Detection]) -> set[str]:
    return {d.text for d in detections}


def test_gs1_data_matrix_keeps_its_symbology_identifier_and_raw_content() -> None:
    frame = compose((900, 1300), [Placement(label_image(shipment()), 450, 650)])

    found = {d.symbology: d for d in decode(frame)}

    matrix = found["datamatrix"]
    # zxing-cpp's default text mode would give "(00)0761..." (for people); the scanner needs the data.
    assert matrix.text == "]d200076123450000001234"
    assert matrix.gs1
    assert matrix.decoder == "zxing"
    parsed = interpret(matrix)
    assert isinstance(parsed, Parsed)
    assert parsed.key == "sscc:076123450000001234"
    assert {found["code128"].text, found["qr"].text} <= {
        "SHP-2026-000123",
        "CT1:SHP:SHP-2026-000123",
        "LGR-T4X9002",
    }


def test_pyzbar_reads_a_thin_code_128_zxing_cpp_misses() -> None:
    # Measured case: the wristband's Code 128 at 0.8 x 203 dpi (1.6 px per module), slightly blurred.
    band = label_image(wristband())
    part = crop(band, (0, 0, 880, band.shape[0]), 0)
    frame = compose((900, 300), [Placement(part, 450, 150, scale=0.8, angle=2)], blur=0.6)

    assert "&/CHG123426A1B2C3" not in _texts(read_zxing(View(to_gray(frame))))
    combined = decode(frame)
    by_text = {d.text: d for d in combined}
    assert by_text["&/CHG123426A1B2C3"].decoder == "zbar"
    assert by_text["CT1:COI:CHG123426A1B2C3"].decoder == "zxing"
    assert _texts(decode(frame, zbar=False)) == {"CT1:COI:CHG123426A1B2C3"}


@pytest.mark.parametrize("angle", [0, 5, 90, 180])
def test_pyzbar_on_every_third_line_reads_what_a_full_scan_reads(angle: int) -> None:
    from pyzbar import pyzbar

    band = label_image(wristband())
    part = crop(band, (0, 0, 880, band.shape[0]), 0)
    frame = compose((1000, 1000), [Placement(part, 500, 500, scale=0.8, angle=angle)], blur=0.6)
    gray = to_gray(frame)
    full = {bytes(r.data).decode() for r in pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.CODE128])}

    assert ZBAR_SCAN_DENSITY > 1
    assert "&/CHG123426A1B2C3" in full
    assert _texts(read_zbar(View(gray))) == full


def test_a_text_read_by_both_decoders_is_reported_once_as_zxing_read_it() -> None:
    a = Detection("SHP-2026-000123", "code128", ((10, 10), (50, 10), (50, 30), (10, 30)), "zxing")
    b = Detection("SHP-2026-000123", "code128", ((11, 12), (49, 12)), "zbar")
    gs1 = Detection("]C100076123450000001234", "code128", ((10, 50), (50, 50)), "zxing", gs1=True)
    plain = Detection("00076123450000001234", "code128", ((10, 51), (50, 51)), "zbar")
    other = Detection("LGR-T4X9002", "code128", ((5, 90), (50, 90)), "zbar")

    assert merge([a, gs1], [b, plain, other]) == [a, gs1, other]


def test_detections_come_in_reading_order() -> None:
    low = Detection("B", "qr", ((0, 100),), "zxing")
    high_right = Detection("C", "qr", ((80, 5),), "zxing")
    high_left = Detection("A", "qr", ((10, 5),), "zbar")
    assert [d.text for d in merge([low, high_right], [high_left])] == ["A", "C", "B"]


def test_a_region_is_decoded_in_frame_coordinates() -> None:
    frame = compose((1280, 720), [Placement(label_image(shipment()), 900, 420, scale=0.6)])
    whole = {d.text: d.bbox for d in decode(frame)}

    region = Rect(600, 150, 1280, 720)
    inside = {d.text: d.bbox for d in decode(frame, region=region)}

    assert set(inside) == set(whole)
    for text, box in inside.items():
        assert region.contains(box)
        assert abs(box.x0 - whole[text].x0) <= 3
        assert abs(box.y0 - whole[text].y0) <= 3
    assert decode(frame, region=Rect(0, 0, 300, 300)) == []


def test_large_frames_are_shrunk_and_the_label_region_then_read_at_full_resolution() -> None:
    frame = compose((1920, 1080), [Placement(label_image(shipment()), 1300, 600, scale=0.9)])
    assert view_of(to_gray(frame), None, 1280).image.shape == (720, 1280)
    full = {d.text: d.bbox for d in decode(frame, max_side=1920)}
    processor = FrameProcessor(RoiTracker(), max_side=1280)

    first = processor.process(Frame(0, 0.0, frame))
    second = processor.process(Frame(1, 0.1, frame))

    # Shrunk to 1280 px the Code 128 has 1.2 px modules: only the QR and Data Matrix codes are read...
    assert first.plan.region is None
    assert "SHP-2026-000123" not in _texts(first.detections)
    for detection in first.detections:
        assert abs(detection.bbox.x0 - full[detection.text].x0) <= 4
        assert abs(detection.bbox.y1 - full[detection.text].y1) <= 4
    # ...and they locate the label, whose region is read at full resolution in the next frame.
    assert second.plan.region is not None
    assert max(second.plan.region.width, second.plan.region.height) <= 1280
    assert "SHP-2026-000123" in _texts(second.detections)


@pytest.mark.parametrize("channels", [None, 3, 4])
def test_frames_of_any_layout_decode_the_same(channels: int | None) -> None:
    code = zxingcpp.create_barcode("LGR-T4X9002", zxingcpp.BarcodeFormat.Code128)
    gray = cv2.copyMakeBorder(
        np.asarray(code.to_image(scale=3), np.uint8), 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255
    )
    frame = (
        gray
        if channels is None
        else cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR if channels == 3 else cv2.COLOR_GRAY2BGRA)
    )

    assert to_gray(frame).shape == gray.shape
    assert _texts(decode(frame)) == {"LGR-T4X9002"}


def test_an_empty_frame_decodes_to_nothing() -> None:
    assert decode(np.full((480, 640), 200, np.uint8)) == []
    assert read_zbar(View(np.zeros((10, 10), np.uint8))) == []


def test_a_second_decoders_other_text_for_the_same_symbol_is_a_misread_not_a_second_code() -> None:
    box = ((10, 10), (200, 10), (200, 40), (10, 40))
    coi = Detection("&/CHG123426A1B2C3", "code128", box, "zxing")
    misread = Detection("&/CHG123436A1B2C3", "code128", ((14, 25), (196, 25)), "zbar")  # its scan line
    elsewhere = Detection("&/CHG123436A1B2C3", "code128", ((14, 225), (196, 225)), "zbar")
    qr_on_top = Detection("LGR-T4X9002", "qr", box, "zbar")

    assert merge([coi], [misread]) == [coi]
    assert merge([coi], [elsewhere, qr_on_top]) == [coi, qr_on_top, elsewhere]
