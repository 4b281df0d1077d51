"""PNG, PDF and ZPL output: sizes match the stock, ZPL uses native barcode commands with exact data."""

import re
from datetime import UTC, datetime
from io import BytesIO

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from celltrail_shared.identifiers import Coi, Din, Giai, LoggerId, ShipmentId, Sscc, UnitId, UnitKind
from labels.api import render_label
from labels.model import AssetTag, BagLabel, Label, ShipmentLabel, TemperatureProfile, WristbandLabel
from labels.render import dark_runs, render_pdf
from labels.stock import ASSET_3X1, BAG_4X3, STOCKS, SUPPORTED_DPI, Stock
from labels.symbologies import code128, gs1_datamatrix
from labels.templates import DEFAULT_STOCK, layout_label
from labels.zpl import code128_field_data, datamatrix_field_data, escape_text

COI = Coi("G1234", "26", "A1B2C3")
DIN = Din.build("G1234", "17", "654321")
EXPIRY = datetime(2026, 3, 14, 23, 59, tzinfo=UTC)
BAG = BagLabel(COI, UnitId(COI, UnitKind.FINAL_PRODUCT, 1), "CAR-T cells", EXPIRY, din=DIN)
SHIPMENT = ShipmentLabel(
    ShipmentId(2026, 123),
    "Manufacturing site",
    "City Hospital",
    TemperatureProfile.CRYO,
    sscc=Sscc.build("0614141", "123456789", 1),
    logger=LoggerId("T4X9002"),
)
LABELS: list[Label] = [
    BAG,
    SHIPMENT,
    WristbandLabel(COI),
    AssetTag(Giai.build("0614141", "LN2-7"), "LN2 dry shipper"),
    AssetTag(LoggerId("T4X9002")),
]
POINTS_PER_MM = 72 / 25.4


def media_boxes(pdf: bytes) -> list[tuple[float, float, float, float]]:
    """Every /MediaBox in a PDF, read without a PDF library."""
    pattern = rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]"
    return [tuple(float(v) for v in match) for match in re.findall(pattern, pdf)]  # type: ignore[misc]


def zpl_fields(zpl: str, command: str) -> list[str]:
    """The ^FD data of every field that uses ``command`` (e.g. ``^BC``)."""
    return re.findall(rf"\{command}[^\^]*(?:\^[A-Z][^\^]*)*?\^FD(.*?)\^FS", zpl)


def decode_mode_n(data: str) -> str:
    """What a Zebra printer encodes for ^BC mode N field data (independent of the writer)."""
    out, index, code_set = [], 0, "B"
    starts = {">9": "A", ">:": "B", ">;": "C"}
    switches = {">5": "C", ">6": "B", ">7": "A"}
    while index < len(data):
        pair = data[index : index + 2]
        if pair in starts or pair in switches:
            code_set = starts.get(pair) or switches[pair]
            index += 2
        elif pair == "><":
            out.append(">")
            index += 2
        elif code_set == "C":
            assert re.fullmatch("[0-9]{2}", pair), f"subset C needs digit pairs, got {pair!r}"
            out.append(pair)
            index += 2
        else:
            out.append(data[index])
            index += 1
    return "".join(out)


# ----------------------------------------------------------------------------------------- PDF


@pytest.mark.parametrize("label", LABELS, ids=lambda label: type(label).__name__)
def test_pdf_page_is_exactly_the_label_stock(label: Label) -> None:
    stock = DEFAULT_STOCK[type(label)]
    pdf = render_label(label, "pdf")
    assert pdf.startswith(b"%PDF-")
    (box,) = media_boxes(pdf)
    assert box[:2] == (0, 0)
    assert box[2] == pytest.approx(stock.width_mm * POINTS_PER_MM, abs=0.01)
    assert box[3] == pytest.approx(stock.height_mm * POINTS_PER_MM, abs=0.01)


def test_pdf_on_another_stock_takes_that_stock_size() -> None:
    (box,) = media_boxes(render_label(BAG, "pdf", 300, BAG_4X3))
    assert box[3] == pytest.approx(76.2 * POINTS_PER_MM, abs=0.01)


def test_pdf_has_one_page_per_label_and_is_reproducible() -> None:
    layouts = [layout_label(label, 300) for label in LABELS]
    pdf = render_pdf(layouts)
    assert len(media_boxes(pdf)) == len(LABELS)
    assert render_pdf(layouts) == pdf


# ----------------------------------------------------------------------------------------- PNG


@pytest.mark.parametrize("dpi", SUPPORTED_DPI)
@pytest.mark.parametrize("stock", list(STOCKS.values()), ids=lambda stock: stock.name)
def test_png_size_and_resolution_match_stock_and_dpi(stock: Stock, dpi: int) -> None:
    label: Label = AssetTag(LoggerId("T4X9002")) if stock.name.startswith("asset") else WristbandLabel(COI)
    if stock.name.startswith(("bag", "shipment")):
        label = BAG
    image = Image.open(BytesIO(render_label(label, "png", dpi, stock)))
    assert image.size == (round(stock.width_mm * dpi / 25.4), round(stock.height_mm * dpi / 25.4))
    assert image.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)


def test_dark_runs() -> None:
    assert list(dark_runs("0110111")) == [(1, 2), (4, 3)]
    assert list(dark_runs("000")) == []


# ----------------------------------------------------------------------------------------- ZPL


def test_zpl_bag_label_uses_native_barcode_commands_with_exact_data() -> None:
    zpl = render_label(BAG, "zpl", 203).decode("ascii")
    assert zpl.startswith("^XA\n^CI28\n^PW812\n^LL609\n")  # 4 x 3 in, the bag default
    assert zpl.rstrip().endswith("^PQ1\n^XZ")
    assert "^GF" not in zpl, "labels must not be sent as bitmaps"
    code128_data = zpl_fields(zpl, "^BC")
    assert code128_data == [">:&/CHG>5123426>6A1B2C3", ">:=G>512341765432170"]
    assert [decode_mode_n(data) for data in code128_data] == ["&/CHG123426A1B2C3", "=G12341765432170"]
    assert zpl_fields(zpl, "^BQ") == ["MA,CT1:UNIT:CHG123426A1B2C3-PRC-01"]
    assert re.search(r"\^BY2\^BCN,\d+,N,N,N,N\^FD", zpl)
    assert "^FDFOR AUTOLOGOUS USE ONLY^FS" in zpl


def test_zpl_shipment_label_has_gs1_datamatrix_with_fnc1() -> None:
    zpl = render_label(SHIPMENT, "zpl", 300).decode("ascii")
    assert "^PW1200\n^LL1800" in zpl
    assert zpl_fields(zpl, "^BX") == ["#100106141411234567897"]
    assert re.search(r"\^BXN,\d+,200,\d+,\d+,,#\^FD", zpl)
    assert [decode_mode_n(d) for d in zpl_fields(zpl, "^BC")] == ["LGR-T4X9002", "SHP-2026-000123"]
    assert "<= -150 _C2_B0C" in zpl


def test_zpl_datamatrix_marks_fnc1_between_variable_length_elements() -> None:
    symbol = gs1_datamatrix("(8004)0614141X(414)6291041500213")
    assert datamatrix_field_data(symbol) == "#180040614141X#14146291041500213"


def test_zpl_symbol_sizes_follow_the_layout() -> None:
    layout = layout_label(SHIPMENT, 600, None)
    zpl = render_label(SHIPMENT, "zpl", 600).decode("ascii")
    for code in layout.codes:
        origin = f"^FO{round(code.x * 600 / 25.4)},{round(code.y * 600 / 25.4)}"
        assert origin in zpl


def test_zpl_text_escapes_control_characters_and_non_ascii() -> None:
    assert escape_text("A^B~C_D") == "A_5EB_7EC_5FD"
    assert escape_text("≤ −150 °C…") == "<= -150 _C2_B0C..."
    assert escape_text("Zürich") == "Z_C3_BCrich"


@given(st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40))
def test_code128_field_data_encodes_exactly_the_content(content: str) -> None:
    assert decode_mode_n(code128_field_data(code128(content))) == content


def test_mode_n_decoder_can_fail() -> None:
    with pytest.raises(AssertionError):
        decode_mode_n(">;1")


def test_other_stocks_render_in_every_format() -> None:
    for fmt in ("png", "pdf", "zpl"):
        assert render_label(AssetTag(LoggerId("T4X9002"), "Logger"), fmt, 203, ASSET_3X1)
