"""Decoded text -> identifier, rejected look-alike (with its reason) or foreign code."""

from __future__ import annotations

import pytest

from celltrail_shared.identifiers import Coi, Din, ShipmentId, Sscc, UnitId, UnitKind, gs1_check_digit
from scanner.decode import Detection
from scanner.parse import Foreign, Parsed, Rejected, display_text, identity_key, interpret


def _d(text: str, symbology: str = "code128", gs1: bool = False) -> Detection:
    return Detection(text, symbology, ((0, 0), (10, 0), (10, 10), (0, 10)), "zxing", gs1)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("&/CHG123426A1B2C3", "coi:CHG123426A1B2C3"),
        ("CT1:COI:CHG123426A1B2C3", "coi:CHG123426A1B2C3"),
        ("=G12341765432170", "din:G123417654321"),
        ("=G12341765432100", "din:G123417654321"),  # flags unused: the same DIN
        ("CT1:UNIT:CHG123426A1B2C3-PRC-01", "unit:CHG123426A1B2C3-PRC-01"),
        ("CHG123426A1B2C3-PRC-01", "unit:CHG123426A1B2C3-PRC-01"),
        ("SHP-2026-000123", "shipment:SHP-2026-000123"),
        ("CT1:SHP:SHP-2026-000123", "shipment:SHP-2026-000123"),
        ("LGR-T4X9002", "logger:LGR-T4X9002"),
        ("]d200076123450000001234", "sscc:076123450000001234"),
        ("00076123450000001234", "sscc:076123450000001234"),  # GS1-128 read by pyzbar: no identifier
        ("]d24147612345000008", "gln:7612345000008"),
    ],
)
def test_every_symbol_of_one_thing_gives_one_key(text: str, key: str) -> None:
    result = interpret(_d(text, gs1=text.startswith("]d2")))
    assert isinstance(result, Parsed)
    assert result.key == key


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("=G12341765432171", "din.flags", "flags 71 imply 'B'"),
        ("&/CHG123426A1B2C", "coi", "15 characters"),
        ("&/CHO123426A1B2C3", "coi.fin", "not O or 0"),
        ("CHG123426A1B2C3-XYZ-01", "unit.kind", "'XYZ' is not one of"),
        ("SHP-2026-12", "shipment", "SHP-2026-000123"),
        ("LGR-t4", "logger", "A-Z, 0-9"),
        ("CT2:COI:CHG123426A1B2C3", "qr.version", "not supported"),
        ("]d200076123450000001235", "sscc", "check digit is 5"),
    ],
)
def test_look_alikes_are_rejected_with_the_rule_they_break(text: str, field: str, reason: str) -> None:
    result = interpret(_d(text, gs1=text.startswith("]d2")))
    assert isinstance(result, Rejected)
    assert result.field == field
    assert reason in result.reason


def test_gs1_data_is_cross_checked_with_biip() -> None:
    # (01) GTIN with a wrong check digit next to a valid SSCC: the domain parser only needs the SSCC and
    # checks the GTIN's length, biip checks the GTIN itself. A label with a corrupt element is refused.
    sscc = Sscc.build("7612345", "000000123").digits
    gtin = "0761234500001"
    gtin += str(gs1_check_digit(gtin))
    wrong = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)

    result = interpret(_d(f"]d200{sscc}01{wrong}", "datamatrix", gs1=True))
    assert isinstance(result, Rejected)
    assert result.field == "gs1"
    assert "biip" in result.reason
    assert "check digit" in result.reason
    good = interpret(_d(f"]d200{sscc}01{gtin}", "datamatrix", gs1=True))
    assert isinstance(good, Parsed)
    assert good.identifier == Sscc(sscc)


@pytest.mark.parametrize(
    "text", ["4006381333931", "=<S1234000", "https://example.com/product", "hello", "&>0261232359"]
)
def test_codes_that_are_not_celltrail_identifiers_are_foreign_not_rejected(text: str) -> None:
    result = interpret(_d(text))
    assert isinstance(result, Foreign)
    assert result.reason


def test_what_the_operator_reads() -> None:
    coi = Coi("G1234", "26", "A1B2C3")
    assert display_text(coi) == "CH G1234 26 A1B2C3 [4]"
    assert display_text(Din.build("G1234", "17", "654321")) == "G1234 17 654321 [A]"
    assert display_text(UnitId(coi, UnitKind.FINAL_PRODUCT, 1)) == "CHG123426A1B2C3-PRC-01"
    assert display_text(ShipmentId(2026, 123)) == "SHP-2026-000123"
    sscc = Sscc.build("7612345", "000000123")
    assert display_text(sscc) == f"(00){sscc.digits}"
    assert identity_key(sscc) == f"sscc:{sscc.digits}"


@pytest.mark.parametrize(
    ("text", "gs1"),
    [
        ("0109504000059101", False),  # a GTIN in a plain Code 128
        ("]d20109504000059101", True),  # a drug's GS1 Data Matrix
        ("]d2010950400005910110ABC123\x1d17261231", True),  # with lot and expiry
        ("]C10109504000059102", True),  # a GTIN with a wrong check digit: still not one of ours
    ],
)
def test_gs1_codes_without_a_celltrail_key_are_foreign(text: str, gs1: bool) -> None:
    result = interpret(_d(text, "datamatrix", gs1=gs1))
    assert isinstance(result, Foreign)
    assert "carries no SSCC, GIAI or GLN" in result.reason
