"""Identifier rules: worked examples from the standards, every rejection reason, round-trip properties."""

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celltrail_shared.identifiers import (
    GS1_SEPARATOR,
    Coi,
    Din,
    Giai,
    Gln,
    Identifier,
    IdentifierError,
    LoggerId,
    ShipmentId,
    Sscc,
    UnitId,
    UnitKind,
    decode_qr_payload,
    encode_qr_payload,
    gs1_check_digit,
    mod37_2,
    parse_coi,
    parse_din,
    parse_gs1,
    parse_identifier,
)

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
FIN_FIRST = "ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"

# ----------------------------------------------------------------------------------------- strategies

fins = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(FIN_FIRST),
    st.text("0123456789", min_size=4, max_size=4),
)
years = st.text("0123456789", min_size=2, max_size=2)
cois = st.builds(Coi, fin=fins, year=years, sequence=st.text(ALNUM, min_size=6, max_size=6))
dins = st.builds(
    Din.build,
    fin=fins,
    year=years,
    sequence=st.text("0123456789", min_size=6, max_size=6),
    check_flags=st.booleans(),
)
unit_ids = st.builds(UnitId, coi=cois, kind=st.sampled_from(UnitKind), number=st.integers(1, 99))
company_prefixes = st.text("0123456789", min_size=7, max_size=10)
ssccs = company_prefixes.flatmap(
    lambda prefix: st.builds(
        Sscc.build,
        company_prefix=st.just(prefix),
        serial_reference=st.text("0123456789", min_size=16 - len(prefix), max_size=16 - len(prefix)),
        extension=st.integers(0, 9),
    )
)
giais = st.builds(
    Giai.build,
    company_prefix=company_prefixes,
    asset_reference=st.text(ALNUM + "abcxyz-./", min_size=1, max_size=20),
)
glns = st.builds(Gln.build, st.text("0123456789", min_size=12, max_size=12))
shipments = st.builds(ShipmentId, year=st.integers(2000, 2099), sequence=st.integers(1, 999_999))
loggers = st.builds(LoggerId, serial=st.text(ALNUM, min_size=1, max_size=20))
identifiers: st.SearchStrategy[Identifier] = st.one_of(
    cois, dins, unit_ids, ssccs, giais, glns, shipments, loggers
)

# ----------------------------------------------------------------------------------------- worked examples


def test_mod37_2_reproduces_the_din_worked_examples() -> None:
    assert mod37_2("G123417654321") == "A"
    assert mod37_2("A999921123456") == "3"


def test_din_worked_example_builds_flags_70_and_the_standard_barcode() -> None:
    din = Din.build("G1234", "17", "654321")
    assert din.check == "A"
    assert din.flags == "70"
    assert din.barcode == "=G12341765432170"
    assert din.eye_readable == "G1234 17 654321 [A]"


def test_din_parses_from_its_barcode_content() -> None:
    assert Din.from_barcode("=G12341765432170") == Din("G1234", "17", "654321", "70")
    assert parse_identifier("=G12341765432170") == Din("G1234", "17", "654321", "70")


def test_din_with_unused_flags_is_accepted() -> None:
    assert parse_identifier("=A99992112345600") == Din("A9999", "21", "123456", "00")


def test_gs1_check_digit_worked_example() -> None:
    assert gs1_check_digit("629104150021") == 3


def test_coi_forms() -> None:
    coi = Coi("G1234", "26", "A1B2C3")
    assert coi.value == "CHG123426A1B2C3"
    assert coi.barcode == "&/CHG123426A1B2C3"
    assert coi.check == mod37_2("CHG123426A1B2C3")
    assert coi.eye_readable == f"CH G1234 26 A1B2C3 [{coi.check}]"


@pytest.mark.parametrize(
    "text",
    [
        "&/CHG123426A1B2C3",
        "CHG123426A1B2C3",
        "CH G1234 26 A1B2C3 [4]",
        "chg123426a1b2c3 4",
        "CHG123426A1B2C34",
    ],
)
def test_coi_parses_from_every_form(text: str) -> None:
    assert parse_coi(text) == Coi("G1234", "26", "A1B2C3")


def test_unit_id_text_and_parse() -> None:
    unit = UnitId(Coi("G1234", "26", "A1B2C3"), UnitKind.FINAL_PRODUCT, 1)
    assert unit.text == "CHG123426A1B2C3-PRC-01"
    assert parse_identifier("CHG123426A1B2C3-PRC-01") == unit


def test_sscc_build_element_string_and_raw() -> None:
    sscc = Sscc.build("0614141", "123456789", extension=1)
    assert sscc.digits == "106141411234567897"
    assert sscc.element_string == "(00)106141411234567897"
    assert sscc.raw == "00106141411234567897"


def test_gln_and_giai_forms() -> None:
    gln = Gln.build("629104150021")
    assert gln.digits == "6291041500213"
    assert gln.element_string == "(414)6291041500213"
    giai = Giai.build("0614141", "LN2-SHIPPER-7")
    assert giai.element_string == "(8004)0614141LN2-SHIPPER-7"
    assert giai.raw == "80040614141LN2-SHIPPER-7"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(00)106141411234567897", Sscc("106141411234567897")),
        ("00106141411234567897", Sscc("106141411234567897")),
        ("]C100106141411234567897", Sscc("106141411234567897")),
        ("]d2\x1d00106141411234567897", Sscc("106141411234567897")),
        ("(8004)0614141A7", Giai("0614141A7")),
        ("]d280040614141A7", Giai("0614141A7")),
        ("]d28004061414119\x1d00106141411234567897", Giai("061414119")),
        ("(414)6291041500213", Gln("6291041500213")),
        ("SHP-2026-000123", ShipmentId(2026, 123)),
        ("LGR-T4X9002", LoggerId("T4X9002")),
        ("]C0&/CHG123426A1B2C3", Coi("G1234", "26", "A1B2C3")),
        ("G1234 17 654321 [A]", Din("G1234", "17", "654321", "70")),
        ("CT1:DIN:G12341765432170", Din("G1234", "17", "654321", "70")),
        ("  &/CHG123426A1B2C3\r\n", Coi("G1234", "26", "A1B2C3")),
    ],
)
def test_parse_identifier_recognises(text: str, expected: Identifier) -> None:
    assert parse_identifier(text) == expected


def test_parse_gs1_splits_variable_length_element_at_fnc1() -> None:
    elements = parse_gs1("80040614141X" + GS1_SEPARATOR + "414" + "6291041500213")
    assert [(e.ai, e.data) for e in elements] == [("8004", "0614141X"), ("414", "6291041500213")]


# ----------------------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("", "identifier", "empty"),
        ("&/CHG123426A1B2C", "coi", "COI must be 15 characters after '&/', got 14"),
        ("&/CHG123426A1B2C34", "coi", "got 16"),
        ("&/XXG123426A1B2C3", "coi", "must start with 'CH'"),
        ("&/CHO123426A1B2C3", "coi.fin", "FIN must start with A-N, P-Z or 1-9"),
        ("&/CH0123426A1B2C3", "coi.fin", "not O or 0"),
        ("&/CHGA23426A1B2C3", "coi.fin", "FIN characters 2-5 must be digits"),
        ("&/CHG12342XA1B2C3", "coi.year", "year must be 2 digits"),
        ("&/CHG123426a1b2c3", "coi.sequence", "upper-case"),
        ("&/CHG123426A1B2C-", "coi.sequence", "6 characters A-Z or 0-9"),
        ("CH G1234 26 A1B2C3 [5]", "coi.check", "COI check character is '5' but CHG123426A1B2C3 implies '4'"),
        ("CH G1234 26 A1B2C3 []", "coi.check", "one character in brackets"),
        ("CH G1234 [26] A1B2C3 4", "coi.check", "brackets around something other"),
        ("CH G1234 26 A1B2C", "coi.check", "15 characters plus a check"),
        ("=G12341765432171", "din.flags", "DIN check character is 'A' but flags 71 imply 'B'"),
        ("=G12341765432145", "din.flags", "DIN flags 45 are not supported"),
        ("=G1234176543217A", "din.flags", "DIN flags must be 2 digits"),
        ("=G123417654321", "din", "must be 16 characters"),
        ("=G12341765432A70", "din.sequence", "DIN sequence must be 6 digits"),
        ("=O12341765432170", "identifier", "not a COI (&/) or DIN (=)"),
        ("G1234 17 654321 [B]", "din.check", "DIN check character is 'B' but G123417654321 implies 'A'"),
        ("=<S1234000", "identifier", "ISBT 128 product code"),
        ("&>0261231159", "identifier", "expiration date and time"),
        ("&!X", "identifier", "not a COI (&/) or DIN (=)"),
        ("CHG123426A1B2C3-XYZ-01", "unit.kind", "unit kind 'XYZ' is not one of APH, PRC, SMP"),
        ("CHG123426A1B2C3-PRC-00", "unit.number", "01-99"),
        ("CHG123426A1B2C3-PRC-1", "unit.number", "2 digits"),
        ("CHG123426A1B2C3-PRC", "unit", "<COI>-<KIND>-<NN>"),
        ("CHG123426A1B2-PRC-01", "coi", "COI must be 15 characters"),
        ("(00)106141411234567898", "sscc", "SSCC check digit is 8 but the first 17 digits imply 7"),
        ("(00)10614141123456789", "gs1.00", "AI (00) needs exactly 18 characters, got 17"),
        ("(414)6291041500214", "gln", "GLN check digit is 4"),
        ("(8004)0614141 A", "giai", "GS1 character set 82"),
        ("(8004)ABCDEF", "giai", "GS1 Company Prefix"),
        ("(8004)" + "1" * 31, "gs1.8004", "1-30 characters, got 31"),
        ("(01)09506000134352", "gs1", "carries no SSCC (00), GIAI (8004) or GLN (414)"),
        ("(99)123", "gs1", "(99) is not one Celltrail reads"),
        ("99123456789012345", "gs1", "'9912' is not one Celltrail reads"),
        ("(00)1061414112345678970x", "gs1.00", "exactly 18"),
        ("SHP-26-000123", "shipment", "SHP-2026-000123"),
        ("SHP-1999-000123", "shipment.year", "2000-2099"),
        ("SHP-2026-000000", "shipment.sequence", "000001-999999"),
        ("LGR-", "logger", "LGR-"),
        ("LGR-abc", "logger", "A-Z, 0-9"),
        ("CT1:COI", "qr", "CT1:<KIND>:<ID>"),
        ("CT2:COI:CHG123426A1B2C3", "qr.version", "'CT2' is not supported"),
        ("CT1:XYZ:1", "qr.kind", "'XYZ' is unknown"),
        ("CT1:COI:CHG123426A1B2C", "coi", "got 14"),
        ("hello", "identifier", "is not a COI, DIN, unit"),
        ("106141411234567897", "identifier", "write an SSCC as (00)"),
    ],
)
def test_parse_identifier_rejects_with_a_precise_reason(text: str, field: str, message: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_identifier(text)
    assert caught.value.field == field
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Sscc.build("061", "1234567890123", 0), "sscc.company_prefix"),
        (lambda: Sscc.build("0614141", "12345678", 0), "sscc.serial_reference"),
        (lambda: Sscc.build("0614141", "12345678X", 0), "sscc.serial_reference"),
        (lambda: Sscc.build("0614141", "123456789", 10), "sscc.extension"),
        (lambda: Giai.build("0614141", ""), "giai.asset_reference"),
        (lambda: Gln.build("12345"), "gln"),
        (lambda: Din.build("G1234", "1", "654321"), "din.year"),
        (lambda: Din.build("G12!4", "17", "654321"), "din.fin"),
        (lambda: mod37_2(""), "check"),
        (lambda: mod37_2("AB*"), "check"),
        (lambda: gs1_check_digit("12a"), "check"),
        (lambda: UnitId(Coi("G1234", "26", "A1B2C3"), UnitKind.SAMPLE, 100), "unit.number"),
        (lambda: Coi("G123", "26", "A1B2C3"), "coi.fin"),
    ],
)
def test_builders_reject_bad_parts(build: object, field: str) -> None:
    assert callable(build)
    with pytest.raises(IdentifierError) as caught:
        build()
    assert caught.value.field == field


def test_decoding_invalid_identifier_from_json_fails_validation() -> None:
    with pytest.raises(msgspec.ValidationError, match="FIN must be 5 characters"):
        msgspec.json.decode(b'{"type":"coi","fin":"G12","year":"26","sequence":"A1B2C3"}', type=Identifier)


def test_parse_din_and_parse_coi_accept_only_their_own_kind() -> None:
    with pytest.raises(IdentifierError):
        parse_din("&/CHG123426A1B2C3")
    with pytest.raises(IdentifierError):
        parse_coi("=G12341765432170")


# ----------------------------------------------------------------------------------------- properties


@given(cois)
def test_coi_round_trips_through_every_text_form(coi: Coi) -> None:
    assert parse_identifier(coi.barcode) == coi
    assert parse_identifier(coi.value) == coi
    assert parse_identifier(coi.eye_readable) == coi
    assert Coi.from_eye_readable(coi.eye_readable) == coi


@given(dins)
def test_din_round_trips(din: Din) -> None:
    assert parse_identifier(din.barcode) == din
    assert parse_din(din.eye_readable).value == din.value


@given(unit_ids)
def test_unit_id_round_trips(unit: UnitId) -> None:
    assert parse_identifier(unit.barcode) == unit


@given(ssccs)
def test_sscc_round_trips(sscc: Sscc) -> None:
    assert parse_identifier(sscc.element_string) == sscc
    assert parse_identifier(sscc.raw) == sscc
    assert parse_identifier("]d2" + GS1_SEPARATOR + sscc.raw) == sscc


@given(giais)
def test_giai_round_trips(giai: Giai) -> None:
    assert parse_identifier(giai.element_string) == giai
    assert parse_identifier("]d2" + giai.raw) == giai


@given(identifiers)
def test_every_identifier_round_trips_through_qr_payload_and_json(identifier: Identifier) -> None:
    payload = encode_qr_payload(identifier)
    assert payload.startswith("CT1:")
    assert decode_qr_payload(payload) == identifier
    assert parse_identifier(payload) == identifier
    assert msgspec.json.decode(msgspec.json.encode(identifier), type=Identifier) == identifier


def _substitutions(text: str, alphabet: str) -> list[str]:
    return [text[:i] + c + text[i + 1 :] for i in range(len(text)) for c in alphabet if c != text[i]]


@settings(max_examples=30)
@given(cois)
def test_any_single_substitution_in_coi_is_caught_by_its_check(coi: Coi) -> None:
    for altered in _substitutions(coi.value, ALNUM):
        assert mod37_2(altered) != coi.check


@settings(max_examples=30)
@given(dins)
def test_any_single_substitution_in_din_is_caught_by_its_check(din: Din) -> None:
    for altered in _substitutions(din.value, ALNUM):
        assert mod37_2(altered) != din.check
        with pytest.raises(IdentifierError):
            Din.from_eye_readable(altered + din.check)


@given(st.text("0123456789", min_size=1, max_size=17), st.data())
def test_gs1_check_digit_detects_any_single_digit_error(digits: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(digits) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != digits[position]]))
    altered = digits[:position] + replacement + digits[position + 1 :]
    assert gs1_check_digit(altered) != gs1_check_digit(digits)
