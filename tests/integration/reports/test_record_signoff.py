"""The record a QA person signs (issue 21, findings 6 and 12): the product's genealogy as an EPCIS
TransformationEvent, QA's signed review of the record, and the PDF (its text extracted with pypdfium2)
and JSON record with everything a reviewer needs."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pypdfium2 as pdfium
import pytest
from reports_support import Case, module_client, module_database, world_and_case

from backend.epcis.eventid import event_hash_id
from backend.epcis.validate import PACKAGED, validate_document
from tests.integration.helpers import assert_problem
from tests.integration.journey import PASSWORD, World
from tests.integration.test_custody_step_rules import _bag_arrived_with_critical_excursion, _receipt

__all__ = ["module_client", "module_database"]


@pytest.fixture(scope="module")
async def journey(module_client: Any, module_database: str) -> tuple[World, Case]:
    return await world_and_case(module_client, module_database)


def _schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads((PACKAGED / "EPCIS-JSON-Schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [e.message for e in validator.iter_errors(document)]


async def test_the_product_is_exported_as_a_transformation_of_its_starting_material(journey):
    world, case = journey
    document = await world.ok("coord", "GET", f"/api/v1/cases/{case.coi}/epcis")
    assert _schema_errors(document) == []
    assert validate_document(document) == []
    events = document["epcisBody"]["eventList"]
    [made] = [e for e in events if e["type"] == "TransformationEvent"]
    assert made["inputEPCList"] == [f"urn:celltrail:isbt128:unit:{case.aph}"]
    assert made["outputEPCList"] == [f"urn:celltrail:isbt128:unit:{case.prc}"]
    assert (made["bizStep"], made["disposition"]) == ("commissioning", "active")
    assert "action" not in made
    assert made["readPoint"] == {"id": "https://id.gs1.org/414/7612345000015"}
    without_id = {k: v for k, v in made.items() if k != "eventID"}
    assert made["eventID"] == event_hash_id(without_id, document["@context"])
    # The apheresis bag is commissioned at collection, the product bag only by the transformation; the
    # consumption entry is the same fact and is not exported twice.
    commissioned = [e for e in events if e["type"] == "ObjectEvent" and e["bizStep"] == "commissioning"]
    assert [e["epcList"] for e in commissioned] == [[f"urn:celltrail:isbt128:unit:{case.aph}"]]


def _pdf_text(content: bytes) -> str:
    document = pdfium.PdfDocument(content)
    return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


async def _signed_off_case(world: World, database_url: str) -> tuple[str, str, str]:
    """A product bag made from its starting material, delivered warm and accepted by QA override with a
    commented checklist, stored at a GPS position, then the case cancelled and its record reviewed by
    QA: (coi, bag, delivery)."""
    coi, ship = await _bag_arrived_with_critical_excursion(world, database_url)
    bag = f"{coi}-PRC-01"
    override = {"username": "qa", "password": PASSWORD, "deviation": "within stability data, DEV-2026-077"}
    receipt = _receipt("accept", qa_override=override, comment="dry ice left, shipper dented at one corner")
    await world.ok("pharm", "POST", f"/api/v1/shipments/{ship}/receipt", 201, json=receipt)
    await world.scan_ok(
        "pharm",
        "store",
        "USZ",
        bag,
        storage_location="LN2 tank 3, rack C",
        gps={"lat": 47.3769, "lon": 8.5417},
    )
    events = (await world.ok("qa", "GET", f"/api/v1/cases/{coi}/timeline"))["events"]
    receipt_event = next(e for e in events if e["action"] == "receipt" and e["shipment_id"] == ship)
    deviation = {
        "description": "delivered above -150 °C for 14 min",
        "impact": "none expected: within the stability data",
        "disposition": "use as is",
        "event_ids": [receipt_event["id"]],
        "password": PASSWORD,
    }
    await world.ok("qa", "POST", f"/api/v1/cases/{coi}/deviations", 201, json=deviation)
    hold = {"reason": "sterility result pending, DEV-2026-078", "password": PASSWORD}
    await world.ok("qa", "POST", f"/api/v1/units/{bag}/hold", 201, json=hold)
    lift = {"reason": "sterility result passed", "password": PASSWORD}
    await world.ok("qa", "POST", f"/api/v1/units/{bag}/hold/release", 201, json=lift)
    return coi, bag, ship


async def test_record_review_is_signed_by_qa_of_the_case(journey, module_database):
    world, case = journey
    path = f"/api/v1/cases/{case.coi}/review"
    assert_problem(
        await world.call("qa", "POST", path, json={"password": "not it"}), 422, "signature refused"
    )
    answer = await world.call("pharm", "POST", path, json={"password": PASSWORD})
    assert_problem(answer, 403)
    before = await world.ok("qa", "GET", f"/api/v1/cases/{case.coi}/verify")
    signed = await world.ok("qa", "POST", path, 201, json={"password": PASSWORD, "comment": "complete"})
    timeline = await world.ok("qa", "GET", f"/api/v1/cases/{case.coi}/timeline")
    [review] = [e for e in timeline["events"] if e["action"] == "record_reviewed"]
    assert review["id"] == signed["event_id"]
    assert review["data"] == {
        "events": before["events"],
        "head_hash": before["head_hash"],
        "comment": "complete",
    }
    assert [(s["username"], s["meaning"], s["role"]) for s in review["signatures"]] == [
        ("qa", "record reviewed", "qa")
    ]
    assert (await world.ok("qa", "GET", f"/api/v1/cases/{case.coi}/verify"))["ok"] is True


async def test_the_pdf_and_json_record_carry_what_qa_signs_off(journey, module_database, artifacts_dir):
    world, _case = journey
    coi, bag, ship = await _signed_off_case(world, module_database)
    before = await world.call("coord", "GET", f"/api/v1/cases/{coi}/report.pdf")
    assert "Record reviewed: NOT YET" in " ".join(_pdf_text(before.content).split())
    await world.ok("qa", "POST", f"/api/v1/cases/{coi}/review", 201, json={"password": PASSWORD})
    cancel = {"reason": "patient withdrew consent before infusion", "password": PASSWORD}
    await world.ok("coord", "POST", f"/api/v1/cases/{coi}/cancel", 201, json=cancel)
    review = {"password": PASSWORD, "comment": "cancellation checked"}
    await world.ok("qa", "POST", f"/api/v1/cases/{coi}/review", 201, json=review)

    response = await world.call("coord", "GET", f"/api/v1/cases/{coi}/report.pdf")
    assert response.status_code == 200, response.text
    artifacts_dir.joinpath("signed-off-record.pdf").write_bytes(response.content)
    text = _pdf_text(response.content)
    flat = " ".join(text.split())
    joined = "".join(text.split())
    record = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/record.json")
    aph = f"{coi}-APH-01"

    # Receipt checklist answers and comment, seals and waybill, the storage location.
    assert "Checklist: seals intact: yes; shipper intact: yes; temperature reviewed: yes" in flat
    assert "Comment: dry ice left, shipper dented at one corner" in flat
    assert "Seals: SEAL-1001" in flat
    assert "Waybill: WB-778899" in flat
    assert "Storage location: LN2 tank 3, rack C" in flat
    # Device time and GPS, each event's hash, the local time beside UTC.
    assert flat.count("Device time: ") >= 5
    assert "GPS: 47.3769, 8.5417" in flat
    for event in record["events"]:
        assert event["hash"] in joined, event["action"]
        assert event["local_time"].endswith("(Europe/Zurich)")
        assert event["local_time"].split(" (")[0] in flat
    # The signer with the role they signed in, not two names in brackets.
    assert "Signed by Pharm (user pharm) as pharmacist - meaning: received and verified" in flat
    assert "Signed by Qa (user qa) as qa - meaning: accepted with deviation" in flat
    # The genealogy, the QA override's deviation, the cancellation's reason.
    assert f"Product {bag} made from {aph} (consumed)" in flat
    assert f"Made from: {aph}" in flat
    assert f"Consumed into: {bag}" in flat
    assert f"shipment {ship}" in flat
    assert "accepted with deviation within stability data, DEV-2026-077" in flat
    assert "Reason: patient withdrew consent before infusion" in flat
    assert f"{bag} placed on hold by Qa. Reason: sterility result pending, DEV-2026-078" in flat
    assert f"{bag} released from hold by Qa. Reason: sterility result passed" in flat
    assert "meaning: placed on hold" in flat
    [recorded] = record["deviation_records"]
    receipt_seq = next(
        e["seq"] for e in record["events"] if e["action"] == "receipt" and e["shipment_id"] == ship
    )
    assert recorded["concerns"] == [receipt_seq]
    assert (
        f"by Qa: delivered above -150 °C for 14 min. Impact: none expected: within the stability data. "
        f"Disposition: use as is. Concerns events #{receipt_seq}"
    ) in flat
    assert "meaning: deviation recorded" in flat
    # The review block: both signatures, what each covers, what came after the first.
    assert flat.count("Record reviewed - event #") == 2
    assert "Signed by Qa (user qa) as qa - meaning: record reviewed" in flat
    assert "2 event(s) were recorded after this review and are not covered by it." in flat
    assert "No event was recorded after this review." in flat
    assert "Comment: cancellation checked" in flat
    first, second = record["reviews"]
    assert first["head_hash"] in joined
    assert second["head_hash"] in joined
    assert second["events_reviewed"] == first["events_reviewed"] + 2

    # The JSON record: the same facts as data.
    assert record["genealogy"] == [
        {
            "product": bag,
            "inputs": [aph],
            "seq": record["genealogy"][0]["seq"],
            "registered_by": "Mfg",
            "registered_at": record["genealogy"][0]["registered_at"],
            "site": "CTA",
        }
    ]
    [deviation] = record["deviations"]
    assert (deviation["shipment_id"], deviation["deviation"]) == (ship, "within stability data, DEV-2026-077")
    assert [s["meaning"] for s in deviation["signatures"]] == [
        "received and verified",
        "accepted with deviation",
    ]
    assert record["cancellation"]["reason"] == "patient withdrew consent before infusion"
    assert [(h["what"], h["reason"]) for h in record["holds"]] == [
        ("placed on hold", "sterility result pending, DEV-2026-078"),
        ("released from hold", "sterility result passed"),
    ]
    stored = next(e for e in record["events"] if e["action"] == "store")
    assert (stored["gps"]["lat"], stored["gps"]["lon"]) == (47.3769, 8.5417)
    assert stored["device_time"]
