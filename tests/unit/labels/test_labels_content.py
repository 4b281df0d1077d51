"""Issue 19 (labels, and finding 12's label side): text is wrapped or shrunk, or refused, never cut; the
bag carries product code, lot, volume, expiry and the autologous statement; the wristband carries the
patient fields a site's policy asks for; and the bag's linear symbols identify the unit to a 1-D scanner,
agreeing with its QR code as the bedside scanner requires."""

import argparse
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pyzbar import pyzbar
from pyzbar.pyzbar import ZBarSymbol

from celltrail_shared.identifiers import (
    Coi,
    Din,
    IdentifierError,
    UnitId,
    UnitKind,
    decode_qr_payload,
    parse_identifier,
)
from labels.api import render_label
from labels.cli import configure_parser, run
from labels.layout import LayoutError
from labels.model import (
    AUTOLOGOUS_WARNING,
    BagLabel,
    LabelPolicyError,
    PatientField,
    WristbandLabel,
    parse_product_code,
)
from labels.stock import BAG_4X2, SUPPORTED_DPI
from labels.templates import layout_label
from scanner.decode import decode
from scanner.parse import Foreign, Parsed, interpret
from scanner.workflow import LabelKind, read_labels

COI = Coi("G1234", "26", "A1B2C3")
UNIT = UnitId(COI, UnitKind.FINAL_PRODUCT, 1)
DIN = Din.build("G1234", "17", "654321")
EXPIRY = datetime(2026, 3, 14, 23, 59, tzinfo=UTC)
LONG_STORAGE = (
    "in the vapour phase of liquid nitrogen at or below -150 C; keep in the dry shipper until thawed at the "
    "bedside; once thawed do not refreeze and infuse within 90 minutes"
)
LONG_PRODUCT = (
    "Autologous anti-CD19 chimeric antigen receptor T cells, suspension for intravenous infusion, "
    "store in the vapour phase of liquid nitrogen at or below -150 C"
)


def bag(**changes: object) -> BagLabel:
    fields: dict[str, object] = {
        "coi": COI,
        "unit": UNIT,
        "product": "Autologous anti-CD19 CAR-T cells",
        "expiry": EXPIRY,
        "din": DIN,
        "product_code": "S1395V00",
        "lot": "L2026-0042",
        "volume": "68 mL",
    }
    fields.update(changes)
    return BagLabel(**fields)  # type: ignore[arg-type]


def texts(label: BagLabel | WristbandLabel, dpi: int = 300) -> list[str]:
    return [text.text for text in layout_label(label, dpi).texts]


def linear_reads(png: bytes) -> set[str]:
    image = np.asarray(Image.open(BytesIO(png)).convert("L"))
    return {s.data.decode() for s in pyzbar.decode(image, symbols=[ZBarSymbol.CODE128])}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="celltrail label")
    configure_parser(parser)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------------------- fitting text


@pytest.mark.parametrize("dpi", SUPPORTED_DPI)
def test_a_long_product_name_wraps_and_shrinks_whole_and_the_label_still_reads(dpi: int) -> None:
    label = bag(product=LONG_PRODUCT)
    layout = layout_label(label, dpi)
    product_lines = [t for t in layout.texts if t.text.split()[0] in LONG_PRODUCT.split()][1:]
    assert len(product_lines) > 1
    assert max(t.size for t in product_lines) < 2.8  # shrunk from its full size
    assert min(t.size for t in product_lines) >= 1.8  # not below the legible minimum
    joined = " ".join(t.text for t in layout.texts)
    assert LONG_PRODUCT in joined  # every word, in order: nothing cut
    assert "…" not in joined
    assert {DIN.barcode, COI.barcode, "=<S1395V00"} <= linear_reads(render_label(label, "png", dpi))


def test_text_that_cannot_fit_even_at_the_smallest_size_is_refused_with_a_clear_error() -> None:
    with pytest.raises(LayoutError) as refused:
        render_label(bag(storage_temp=LONG_STORAGE), "png", 300)
    message = str(refused.value)
    assert message.startswith("storage temperature 'STORE in the vapour phase of")
    assert "does not fit" in message
    assert "smallest legible size" in message


def test_the_cli_refuses_text_that_does_not_fit_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bag.png"
    argv = ["bag", "--unit", UNIT.text, "--product", "CAR-T", "--storage-temp", LONG_STORAGE]
    assert run(parse([*argv, "--expiry", "2026-03-14", "--out", str(out)])) == 2
    err = capsys.readouterr().err
    assert err.startswith("celltrail label: error: storage temperature 'STORE in the vapour")
    assert "does not fit" in err
    assert not out.exists()


def test_content_that_needs_a_larger_stock_is_refused_not_squeezed() -> None:
    # Three rows of codes and four facts do not fit a 4 x 2 in label: it says so.
    with pytest.raises(LayoutError, match="larger label stock"):
        layout_label(bag(din=None), 203, BAG_4X2)


# ----------------------------------------------------------------------------------------- bag content


def test_the_bag_carries_product_code_lot_volume_expiry_and_the_autologous_statement() -> None:
    shown = texts(bag())
    assert AUTOLOGOUS_WARNING in shown
    assert "LOT L2026-0042" in shown
    assert "VOL 68 mL" in shown
    assert "EXP 2026-03-14 23:59 UTC" in shown
    assert "S1395V00" in shown  # eye-readable under its Code 128
    assert "=<S1395V00" in [code.symbol.content for code in layout_label(bag(), 300).codes]


def test_missing_fields_are_left_out_and_only_autologous_products_say_so() -> None:
    shown = texts(bag(product_code=None, lot=None, volume=None, autologous=False))
    assert AUTOLOGOUS_WARNING not in shown
    assert not any(text.startswith(("LOT", "VOL", "PRODUCT")) for text in shown)
    assert "EXP 2026-03-14 23:59 UTC" in shown


def test_product_code_is_the_isbt_128_structure() -> None:
    assert parse_product_code("=<S1395V00") == "S1395V00"
    assert parse_product_code("E0001V0a") == "E0001V0a"  # a lower-case second division character
    for bad in ("S139V00", "s1395V00", "S1395V00X", "=<"):
        with pytest.raises(ValueError, match="ISBT 128 product code"):
            parse_product_code(bad)
    with pytest.raises(ValueError, match="without its '=<'"):
        bag(product_code="=<S1395V00")


def test_cli_bag_fields(tmp_path: Path) -> None:
    out = tmp_path / "bag.png"
    argv = [
        *("bag", "--unit", UNIT.text, "--din", DIN.barcode, "--product", "CAR-T", "--expiry", "2026-03-14"),
        *("--product-code", "=<S1395V00", "--lot", "L7", "--volume", "68 mL", "--out", str(out)),
    ]
    assert run(parse(argv)) == 0
    assert {COI.barcode, DIN.barcode, "=<S1395V00"} <= linear_reads(out.read_bytes())
    with pytest.raises(SystemExit):
        parse([*argv[:-2], "--product-code", "S13", "--out", str(out)])


# ----------------------------------------------------------------------------------------- wristband


def test_the_wristband_prints_patient_fields_only_when_given() -> None:
    plain = texts(WristbandLabel(COI))
    assert not any(text.startswith(("DOB", "HOSP")) for text in plain)
    full = WristbandLabel(
        COI, patient_name="Anna Muster-Beispiel", date_of_birth=date(1971, 5, 2), hospital_number="4711-0815"
    )
    shown = texts(full)
    assert "Anna Muster-Beispiel" in shown
    assert "DOB 1971-05-02" in shown
    assert "HOSP NO 4711-0815" in shown
    only_number = texts(WristbandLabel(COI, hospital_number="4711-0815"))
    assert "HOSP NO 4711-0815" in only_number
    assert not any(text.startswith("DOB") for text in only_number)


def test_a_site_policy_refuses_a_wristband_without_the_fields_it_requires() -> None:
    band = WristbandLabel(COI, patient_name="Anna Muster")
    layout_label(band, 300, wristband_requires={PatientField.NAME})
    with pytest.raises(LabelPolicyError, match="requires dob, hospital-number"):
        render_label(
            band,
            "png",
            300,
            wristband_requires={PatientField.DATE_OF_BIRTH, PatientField.HOSPITAL_NUMBER, PatientField.NAME},
        )


def test_cli_wristband_fields_and_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "band.pdf"
    base = ["wristband", "--coi", COI.barcode, "--patient-name", "Anna Muster", "--out", str(out)]
    assert run(parse([*base, "--require", "name"])) == 0
    assert run(parse([*base, "--require", "name", "--require", "dob"])) == 2
    assert "requires dob" in capsys.readouterr().err
    assert run(parse([*base, "--dob", "1971-05-02", "--require", "dob"])) == 0
    with pytest.raises(SystemExit):
        parse([*base, "--dob", "02.05.1971"])


# ----------------------------------------------------------------------------------------- finding 12


@pytest.mark.parametrize("dpi", SUPPORTED_DPI)
def test_a_bag_with_a_din_identifies_the_unit_in_its_linear_codes(dpi: int) -> None:
    reads = linear_reads(render_label(bag(), "png", dpi))
    assert reads == {COI.barcode, DIN.barcode, "=<S1395V00"}
    assert parse_identifier(DIN.barcode) == DIN
    # The product code is the ISBT 128 structure the parser names and the scanner ignores, not a STOP.
    with pytest.raises(IdentifierError, match="product code"):
        parse_identifier("=<S1395V00")


@pytest.mark.parametrize("dpi", SUPPORTED_DPI)
def test_a_bag_without_a_din_carries_its_unit_id_in_a_code_128(dpi: int) -> None:
    label = bag(din=None)
    reads = linear_reads(render_label(label, "png", dpi))
    assert reads == {COI.barcode, UNIT.text, "=<S1395V00"}
    assert parse_identifier(UNIT.text) == UNIT == decode_qr_payload(f"CT1:UNIT:{UNIT.text}")


@pytest.mark.parametrize("din", [DIN, None], ids=["din", "unit"])
def test_the_scanner_reads_one_agreeing_bag_from_every_symbol(din: Din | None) -> None:
    """Every symbol on the bag, read and grouped as the bedside scanner does, names the same unit and
    COI: the new linear symbol never makes the label's symbols disagree."""
    image = np.asarray(Image.open(BytesIO(render_label(bag(din=din), "png", 203))).convert("L"))
    interpreted = [interpret(detection) for detection in decode(image)]
    parsed = [item for item in interpreted if isinstance(item, Parsed)]
    foreign = [item.detection.text for item in interpreted if isinstance(item, Foreign)]
    assert foreign == ["=<S1395V00"]
    assert {item.detection.symbology for item in parsed} >= {"qr", "code128"}
    frame = read_labels(parsed)
    assert frame.disagreement is None
    assert {read.kind for read in frame.labels} == {LabelKind.BAG}
    assert {read.unit for read in frame.labels} == {UNIT}
    assert any(read.checked for read in frame.labels)  # the COI Code 128 was grouped with the bag
    if din is not None:
        assert {read.din for read in frame.labels} == {DIN}


def _bag_above_wristband(bag_label: BagLabel, band: WristbandLabel) -> Image.Image:
    top = Image.open(BytesIO(render_label(bag_label, "png", 203))).convert("L")
    bottom = Image.open(BytesIO(render_label(band, "png", 203))).convert("L")
    canvas = Image.new("L", (max(top.width, bottom.width), top.height + bottom.height + 40), 255)
    canvas.paste(top, (0, 0))
    canvas.paste(bottom, (0, top.height + 40))
    return canvas


def _frame(image: Image.Image) -> tuple[str | None, set[tuple[LabelKind, str]]]:
    items = [interpret(detection) for detection in decode(np.asarray(image), max_side=4000)]
    frame = read_labels([item for item in items if isinstance(item, Parsed)])
    return frame.disagreement, {(read.kind, read.coi.value) for read in frame.labels if read.checked}


OTHER_PATIENT = Coi("G1234", "26", "Z9Y8X7")


def test_a_bag_with_a_din_held_above_another_patients_wristband_reads_as_two_labels() -> None:
    disagreement, checked = _frame(_bag_above_wristband(bag(), WristbandLabel(OTHER_PATIENT)))
    assert disagreement is None
    assert checked == {(LabelKind.BAG, COI.value), (LabelKind.WRISTBAND, OTHER_PATIENT.value)}


def test_a_bag_without_a_din_held_above_another_patients_wristband_reads_as_two_labels() -> None:
    disagreement, checked = _frame(_bag_above_wristband(bag(din=None), WristbandLabel(OTHER_PATIENT)))
    assert disagreement is None
    assert checked == {(LabelKind.BAG, COI.value), (LabelKind.WRISTBAND, OTHER_PATIENT.value)}
