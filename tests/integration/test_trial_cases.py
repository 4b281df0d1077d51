"""Investigational cases (issue 25): a case that belongs to a clinical trial carries the trial's register
number, protocol, trial site number, subject identifier and sponsor instead of patient data; its labels
carry the investigational statement; its record (JSON, PDF) and EPCIS export name the trial; it refuses
patient data, at the API and in the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pypdfium2 as pdfium
import pytest

from backend.epcis.validate import validate_document
from celltrail_shared.identifiers import Coi, Din, UnitId, UnitKind
from labels.investigational import TRIAL_BAG_4X4, stock_for
from labels.layout import LayoutError
from labels.model import BagLabel, TrialStatement, WristbandLabel
from labels.stock import BAG_4X3
from labels.templates import layout_label
from tests.integration.helpers import assert_problem
from tests.integration.journey import World, build_world

TRIAL = {
    "register": "2024-512345-12-00",
    "protocol": "CARTALPHA-01",
    "site_number": "CH-03",
    "subject": "03-0017",
    "sponsor": "Celltrail Academic Network",
}
STATEMENT = "FOR CLINICAL TRIAL USE ONLY"


def pdf_text(content: bytes) -> str:
    document = pdfium.PdfDocument(content)
    return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


async def _trial_case(world: World, **extra: Any) -> str:
    case = await world.ok(
        "coord",
        "POST",
        "/api/v1/cases",
        201,
        json={"treatment_site": "USZ", "therapy": "CAR-T (investigational)", "trial": TRIAL, **extra},
    )
    return str(case["coi"])


async def _rows(database_url: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_a_trial_case_names_its_trial_to_everyone_who_sees_it(client: Any) -> None:
    world = await build_world(client)
    coi = await _trial_case(world)
    case = await world.ok("coord", "GET", f"/api/v1/cases/{coi}")
    assert case["trial"] == TRIAL
    assert case["patient_ref"] is None
    assert case["birth_year"] is None
    # The subject identifier is a pseudonym the manufacturer prints on the bags: a case visible to
    # manufacturing shows it there too (the case reaches CTA with a unit registered there).
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    assert aph.startswith(coi)
    timeline = await world.ok("nurse", "GET", f"/api/v1/cases/{coi}/timeline")
    assert timeline["case"]["trial"]["subject"] == "03-0017"
    created = next(e for e in timeline["events"] if e["action"] == "case_created")
    assert created["data"]["trial"] == TRIAL  # the trial is in the custody chain from the first event
    # An ordinary case has none.
    ordinary = await world.ok("coord", "GET", f"/api/v1/cases/{await world.new_case()}")
    assert ordinary["trial"] is None


@pytest.mark.parametrize("extra", [{"patient_ref": "MRN-0042"}, {"birth_year": 1970}])
async def test_a_trial_case_refuses_patient_data_at_creation(client: Any, extra: dict[str, Any]) -> None:
    world = await build_world(client)
    response = await world.call(
        "coord",
        "POST",
        "/api/v1/cases",
        json={"treatment_site": "USZ", "therapy": "CAR-T", "trial": TRIAL, **extra},
    )
    body = assert_problem(response, 422, "subject identifier")
    assert next(iter(extra)) in str(body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("register", "NCT123"),  # not a register number
        ("register", "2024-512345-12-00; DROP"),
        ("subject", " 03-0017"),  # a label prints it as given: no padding
        ("subject", "03-0017\n"),
        ("register", "NCT01234567\n"),
        ("subject", "x" * 21),
        ("protocol", "P\nQ"),
        ("sponsor", "S" * 41),
        ("sponsor", "Sponsor\x07"),
        ("site_number", ""),
    ],
)
async def test_trial_fields_are_validated_and_bounded(client: Any, field: str, value: str) -> None:
    world = await build_world(client)
    trial = {**TRIAL, field: value}
    response = await world.call(
        "coord", "POST", "/api/v1/cases", json={"treatment_site": "USZ", "therapy": "CAR-T", "trial": trial}
    )
    assert_problem(response, 400)
    missing = {k: v for k, v in TRIAL.items() if k != field}
    response = await world.call(
        "coord", "POST", "/api/v1/cases", json={"treatment_site": "USZ", "therapy": "CAR-T", "trial": missing}
    )
    assert_problem(response, 400)


async def test_a_trial_case_holds_no_patient_identity(client: Any, database_url: str) -> None:
    world = await build_world(client)
    coi = await _trial_case(world)
    response = await world.call(
        "coord",
        "PUT",
        f"/api/v1/cases/{coi}/patient",
        json={"name": "Ottilie Wunderlich-Quast", "date_of_birth": "1968-04-17"},
    )
    assert_problem(response, 409, "clinical trial", "03-0017")
    # The database refuses it too, whatever path writes the row, and a patient reference added later.
    with pytest.raises(asyncpg.CheckViolationError, match="clinical trial"):
        await _rows(
            database_url,
            "INSERT INTO patient_identities (coi, key_id, nonce, ciphertext) "
            "VALUES ($1, '0123456789abcdef', $2, $3)",
            coi,
            b"\x00" * 12,
            b"\x00" * 32,
        )
    with pytest.raises(asyncpg.CheckViolationError, match="cases_trial_pseudonymous"):
        await _rows(database_url, "UPDATE cases SET patient_ref = 'MRN-1' WHERE coi = $1", coi)
    with pytest.raises(asyncpg.CheckViolationError, match="cases_trial_complete"):
        await _rows(database_url, "UPDATE cases SET trial_sponsor = NULL WHERE coi = $1", coi)
    assert await _rows(database_url, "SELECT 1 FROM patient_identities WHERE coi = $1", coi) == []


async def test_labels_of_a_trial_case_carry_the_investigational_statement(client: Any) -> None:
    world = await build_world(client)
    coi = await _trial_case(world)
    aph = await world.unit("nurse", coi, "APH", "USZ-APH", expires_at="2030-01-01T00:00:00Z")
    # The site prints the patient's name on bands: a trial subject's band prints the subject instead.
    await world.ok("admin", "PUT", "/api/v1/sites/USZ/wristband-policy", json={"fields": ["name"]})
    for who, path in (
        ("nurse", f"/api/v1/labels/bag/{aph}.pdf"),
        ("pharm", f"/api/v1/labels/wristband/{coi}.pdf"),
    ):
        response = await world.call(who, "GET", path)
        assert response.status_code == 200, response.text
        text = " ".join(pdf_text(response.content).split())
        for needle in (STATEMENT, "TRIAL 2024-512345-12-00", "PROTOCOL CARTALPHA-01", "SUBJECT 03-0017"):
            assert needle in text, (path, needle, text)
        assert "SITE CH-03" in text, text
        assert "SPONSOR Celltrail Academic Network" in text, text
    ordinary = await world.new_case()
    other = await world.unit("nurse", ordinary, "APH", "USZ-APH", expires_at="2030-01-01T00:00:00Z")
    response = await world.call("nurse", "GET", f"/api/v1/labels/bag/{other}.pdf")
    assert STATEMENT not in " ".join(pdf_text(response.content).split())


@pytest.mark.parametrize("dpi", [203, 300, 600])
def test_a_trial_bag_is_printed_on_a_stock_it_fits_and_refused_where_it_does_not(dpi: int) -> None:
    coi = Coi(fin="A9999", year="26", sequence="000001")
    unit = UnitId(coi=coi, kind=UnitKind("PRC"), number=1)
    # Every field at its longest, in the widest letter.
    longest = TrialStatement(
        register="2024-512345-12-00",
        protocol="W" * 30,
        site_number="W" * 10,
        subject="W" * 20,
        sponsor="W" * 40,
    )
    product = "Autologous anti-CD19 CAR-T cells in cryopreservation medium, 5 % DMSO"
    expiry = datetime(2030, 1, 1, tzinfo=UTC)
    din = Din.from_barcode("=G12341765432170")
    for extra in ({"din": din, "lot": "L" * 40, "volume": "V" * 40}, {"lot": "L" * 40, "volume": "V" * 40}):
        bag = BagLabel(
            coi=coi,
            unit=unit,
            product=product,
            expiry=expiry,
            product_code="S1395V00",
            trial=longest,
            **extra,
        )
        assert stock_for(bag) is TRIAL_BAG_4X4
        layout_label(bag, dpi, TRIAL_BAG_4X4)
    # On the ordinary bag stock an ordinary lot and volume no longer fit beside the statement: the label is
    # refused, never shortened (the same bag without a trial fits).
    ordinary = {"product_code": "S1395V00", "lot": "L2026-0042", "volume": "68 mL"}
    layout_label(BagLabel(coi=coi, unit=unit, product=product, expiry=expiry, **ordinary), dpi, BAG_4X3)
    with pytest.raises(LayoutError, match="does not fit"):
        layout_label(
            BagLabel(coi=coi, unit=unit, product=product, expiry=expiry, trial=longest, **ordinary),
            dpi,
            BAG_4X3,
        )
    assert stock_for(BagLabel(coi=coi, unit=unit, product=product, expiry=expiry)) is None
    layout_label(WristbandLabel(coi=coi, trial=longest), dpi)
    # The band refuses patient identity beside a trial.
    with pytest.raises(ValueError, match="subject identifier"):
        WristbandLabel(coi=coi, patient_name="Ottilie", trial=longest)
    # The label model bounds each field on its own as well.
    with pytest.raises(ValueError, match="subject"):
        TrialStatement(register="NCT01234567", protocol="P", site_number="1", subject="X" * 41, sponsor="S")


async def test_the_record_and_epcis_export_name_the_trial(client: Any) -> None:
    world = await build_world(client)
    coi = await _trial_case(world)
    await world.unit("nurse", coi, "APH", "USZ-APH")
    record = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/record.json")
    assert record["trial"] == TRIAL
    pdf = await world.call("coord", "GET", f"/api/v1/cases/{coi}/report.pdf")
    assert pdf.status_code == 200, pdf.text
    text = " ".join(pdf_text(pdf.content).split())
    for needle in ("Clinical trial", "2024-512345-12-00", "CARTALPHA-01", "Celltrail Academic Network"):
        assert needle in text, (needle, text)
    assert "subject 03-0017 at trial site CH-03" in text, text
    document = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/epcis")
    assert validate_document(document) == []
    commissioned = [e for e in document["epcisBody"]["eventList"] if e["bizStep"] == "commissioning"]
    assert commissioned
    for event in commissioned:
        assert event["ilmd"]["celltrail:clinicalTrial"] == TRIAL
    assert all("ilmd" not in e for e in document["epcisBody"]["eventList"] if e["bizStep"] != "commissioning")
