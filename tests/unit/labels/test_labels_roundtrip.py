"""Every code on every label reads back, with real decoders, as the identifier it was made from.

Rendered PNGs are decoded with pyzbar (Code 128, QR) and zxing-cpp (Data Matrix), then parsed with
``parse_identifier``; also after the damage a phone camera does: slight rotation, scaling down to the
lowest printer resolution, blur, noise and low contrast.
"""

from datetime import UTC, datetime
from io import BytesIO

import cv2
import numpy as np
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pyzbar import pyzbar
from pyzbar.pyzbar import ZBarSymbol

from celltrail_shared.identifiers import (
    Coi,
    Din,
    Giai,
    Identifier,
    LoggerId,
    ShipmentId,
    Sscc,
    UnitId,
    UnitKind,
    parse_identifier,
)
from labels.api import render_label
from labels.model import AssetTag, BagLabel, Label, ShipmentLabel, TemperatureProfile, WristbandLabel
from labels.stock import SUPPORTED_DPI

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
EXPIRY = datetime(2026, 3, 14, 23, 59, tzinfo=UTC)

fins = st.builds(
    lambda a, b: a + b,
    st.sampled_from("ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"),
    st.text(DIGITS, min_size=4, max_size=4),
)
years = st.text(DIGITS, min_size=2, max_size=2)
cois = st.builds(Coi, fin=fins, year=years, sequence=st.text(ALNUM, min_size=6, max_size=6))
dins = st.builds(Din.build, fin=fins, year=years, sequence=st.text(DIGITS, min_size=6, max_size=6))
units = st.builds(UnitId, coi=cois, kind=st.sampled_from(UnitKind), number=st.integers(1, 99))
bag_labels = st.builds(
    lambda unit, din: BagLabel(coi=unit.coi, unit=unit, product="CAR-T cells", expiry=EXPIRY, din=din),
    units,
    st.none() | dins,
)
ssccs = st.builds(
    Sscc.build,
    st.text(DIGITS, min_size=7, max_size=7),
    st.text(DIGITS, min_size=9, max_size=9),
    st.integers(0, 9),
)
shipment_labels = st.builds(
    ShipmentLabel,
    shipment=st.builds(ShipmentId, year=st.integers(2000, 2099), sequence=st.integers(1, 999_999)),
    from_site=st.just("Manufacturing site"),
    to_site=st.just("City Hospital"),
    temperature_profile=st.sampled_from(TemperatureProfile),
    sscc=st.none() | ssccs,
    logger=st.none() | st.builds(LoggerId, st.text(ALNUM, min_size=1, max_size=20)),
)
asset_tags = st.builds(
    AssetTag,
    asset=st.builds(
        Giai.build, st.text(DIGITS, min_size=7, max_size=10), st.text(ALNUM + "-./", min_size=1, max_size=18)
    )
    | st.builds(LoggerId, st.text(ALNUM, min_size=1, max_size=20)),
)
labels = st.one_of(bag_labels, shipment_labels, st.builds(WristbandLabel, cois), asset_tags)

ISP_DENOISE_SIGMA = 0.6  # pixels; phones never hand over raw sensor noise
ROUND_TRIP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def expected_identifiers(label: Label) -> set[Identifier]:
    match label:
        case BagLabel():
            on_bag: set[Identifier] = {label.coi, label.unit}
            return on_bag | ({label.din} if label.din else set())
        case ShipmentLabel():
            found: set[Identifier] = {label.shipment}
            found |= {label.sscc} if label.sscc else set()
            found |= {label.logger} if label.logger else set()
            return found
        case WristbandLabel():
            return {label.coi}
        case AssetTag():
            return {label.asset}


def to_gray(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(png)).convert("L"))


def decode(image: np.ndarray) -> set[Identifier]:
    """Everything pyzbar and zxing-cpp read in ``image``, parsed as identifiers."""
    contents = {
        s.data.decode() for s in pyzbar.decode(image, symbols=[ZBarSymbol.CODE128, ZBarSymbol.QRCODE])
    }
    for barcode in zxingcpp.read_barcodes(
        image,
        formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.DataMatrix),
        text_mode=zxingcpp.TextMode.Plain,
    ):
        contents.add(barcode.symbology_identifier + barcode.text)
    return {parse_identifier(content) for content in contents}


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    height, width = image.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(height * sin + width * cos) + 1, int(height * cos + width * sin) + 1
    matrix[0, 2] += new_w / 2 - width / 2
    matrix[1, 2] += new_h / 2 - height / 2
    return cv2.warpAffine(image, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderValue=255)


def phone_camera(
    image: np.ndarray, *, degrees: float, scale: float, blur: float, noise: float, quality: int, seed: int
) -> np.ndarray:
    """What a phone delivers: the lens blurs, the sensor adds noise, the image pipeline denoises and
    JPEG-compresses; the label is tilted, lower in contrast, and smaller than printed."""
    out = cv2.resize(rotate(image, degrees), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    rng = np.random.default_rng(seed)
    out = np.clip(out.astype(np.float32) * 0.75 + 40 + rng.normal(0, noise, out.shape), 0, 255).astype(
        np.uint8
    )
    out = cv2.GaussianBlur(out, (0, 0), ISP_DENOISE_SIGMA)
    ok, jpeg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)
    assert decoded is not None
    return np.asarray(decoded, dtype=np.uint8)


@ROUND_TRIP
@given(labels, st.sampled_from(SUPPORTED_DPI))
def test_every_code_reads_back_as_its_identifier(label: Label, dpi: int) -> None:
    assert decode(to_gray(render_label(label, "png", dpi))) >= expected_identifiers(label)


@ROUND_TRIP
@given(
    labels,
    st.floats(-3.0, 3.0),
    st.sampled_from([0, 90, 180, 270]),
    st.floats(0.0, 0.5),
    st.floats(0.0, 8.0),
    st.integers(75, 95),
    st.integers(0, 2**16),
)
def test_codes_read_back_through_a_phone_camera(
    label: Label, tilt: float, quarter_turn: int, blur: float, noise: float, quality: int, seed: int
) -> None:
    # Printed at 300 dpi, seen at the resolution of the coarsest printer (203 dpi).
    image = to_gray(render_label(label, "png", 300))
    damaged = phone_camera(
        image,
        degrees=quarter_turn + tilt,
        scale=203 / 300,
        blur=blur,
        noise=noise,
        quality=quality,
        seed=seed,
    )
    assert decode(damaged) >= expected_identifiers(label)


@pytest.mark.parametrize("dpi", SUPPORTED_DPI)
def test_a_600_dpi_label_scaled_to_any_supported_resolution_reads_back(dpi: int) -> None:
    coi = Coi("G1234", "26", "A1B2C3")
    label = BagLabel(
        coi=coi,
        unit=UnitId(coi, UnitKind.FINAL_PRODUCT, 1),
        product="CAR-T",
        expiry=EXPIRY,
        din=Din.build("G1234", "17", "654321"),
    )
    image = to_gray(render_label(label, "png", 600))
    scaled = cv2.resize(image, None, fx=dpi / 600, fy=dpi / 600, interpolation=cv2.INTER_AREA)
    assert decode(scaled) == expected_identifiers(label)


def test_decoder_check_fails_for_a_blank_label() -> None:
    # The harness itself must be able to fail: a blank image yields nothing.
    assert decode(np.full((400, 800), 255, dtype=np.uint8)) == set()
