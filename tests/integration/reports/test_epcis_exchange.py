"""EPCIS 2.0 over HTTP: a full case exported (validated against GS1's schema with format checks and CBV
2.0 vocabulary), a partner's documents captured as custody scans (idempotent, state machine applied,
non-conformant documents applying nothing), and who may do what."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from reports_support import (
    CTA_GLN,
    SPECS,
    Case,
    accept_receipt,
    module_client,
    module_database,
    sql,
    world_and_case,
)

from backend.epcis.eventid import event_hash_id
from backend.epcis.validate import PACKAGED, SCHEMA_ENV, validate_document
from tests.integration.helpers import assert_problem, make_user
from tests.integration.journey import World

__all__ = ["module_client", "module_database"]

SSCC = "076123450000000015"


@pytest.fixture(scope="module")
async def journey(module_client: Any, module_database: str) -> tuple[World, Case]:
    return await world_and_case(module_client, module_database)


def official_validator() -> Any:
    schema = json.loads((PACKAGED / "EPCIS-JSON-Schema.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def assert_conformant(document: dict[str, Any]) -> None:
    errors = [e.message for e in official_validator().iter_errors(document)]
    assert errors == []
    assert validate_document(document) == []


def by_step(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in document["epcisBody"]["eventList"]:
        found.setdefault(event["bizStep"], []).append(event)
    return found


async def test_case_export_is_conformant_and_maps_every_step(journey):
    world, case = journey
    response = await world.call("coord", "GET", f"/api/v1/cases/{case.coi}/epcis")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    document = response.json()
    assert_conformant(document)
    assert document["@context"][0] == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    assert (document["type"], document["schemaVersion"]) == ("EPCISDocument", "2.0")

    events = document["epcisBody"]["eventList"]
    for event in events:
        without_id = {k: v for k, v in event.items() if k != "eventID"}
        assert event["eventID"] == event_hash_id(without_id, document["@context"])
        assert event["eventID"].startswith("ni:///sha-256;")
        assert event["eventID"].endswith("?ver=CBV2.0")
    assert len({e["eventID"] for e in events}) == len(events)

    steps = by_step(document)
    unit = f"urn:celltrail:isbt128:unit:{case.aph}"
    ship1 = f"urn:celltrail:shipment:{case.ship1}"
    [commissioned, _] = steps["commissioning"]
    assert (commissioned["type"], commissioned["action"], commissioned["disposition"]) == (
        "ObjectEvent",
        "ADD",
        "active",
    )
    assert commissioned["epcList"] == [unit]
    [packed, _] = steps["packing"]
    assert (packed["type"], packed["action"], packed["parentID"], packed["childEPCs"]) == (
        "AggregationEvent",
        "ADD",
        ship1,
        [unit],
    )
    # One shipping event per leg: the refused pick-up did not happen and is not exported.
    shipped = steps["shipping"]
    assert len(shipped) == 2
    assert shipped[0]["disposition"] == "in_transit"
    assert shipped[0]["epcList"] == [ship1, unit]
    assert shipped[0]["readPoint"] == {"id": "urn:celltrail:site:USZ-APH"}
    assert shipped[0]["sourceList"] == [
        {"type": "owning_party", "source": "urn:celltrail:party:USZ-APH"},
        {"type": "location", "source": "urn:celltrail:site:USZ-APH"},
    ]
    # The manufacturing site has a GLN: GS1 Digital Link for the location, the GLN as party.
    assert shipped[0]["destinationList"] == [
        {"type": "owning_party", "destination": f"https://id.gs1.org/417/{CTA_GLN}"},
        {"type": "location", "destination": f"https://id.gs1.org/414/{CTA_GLN}"},
    ]
    assert shipped[0]["bizTransactionList"] == [
        {"type": "bol", "bizTransaction": "urn:celltrail:waybill:WB-778899"}
    ]
    assert [e["bizStep"] for e in (steps["transporting"] + steps["accepting"])] == [
        "transporting",
        "accepting",
    ]

    receipts = [e for e in steps["receiving"] if e["disposition"] == "conformant"]
    assert len(receipts) == 2
    first, second = (r["sensorElementList"] for r in receipts)
    [report] = first[0]["sensorReport"]
    assert report == {
        "type": "Temperature",
        "exception": "ALARM_CONDITION",
        "minValue": 4.5,
        "maxValue": 12.0,
        "meanValue": 7.25,
        "uom": "CEL",
    }
    assert first[0]["sensorMetadata"]["deviceID"] == "urn:celltrail:logger:LGR-T1"
    assert set(first[0]["sensorMetadata"]) == {"startTime", "endTime", "deviceID"}
    assert "exception" not in second[0]["sensorReport"][0]
    assert second[0]["sensorReport"][0]["maxValue"] == -180.75
    assert receipts[1]["readPoint"] == {"id": "urn:celltrail:site:USZ"}
    unpacked = steps["unpacking"]
    assert [(e["type"], e["action"]) for e in unpacked] == [("AggregationEvent", "DELETE")] * 2

    assert steps["inspecting"][0]["disposition"] == "conformant"  # QA release
    assert steps["storing"][0]["disposition"] == "available"
    dispensed = [e["disposition"] for e in steps["dispensing"]]
    assert dispensed == ["in_progress", "dispensed"]
    assert steps["other"][0]["epcList"] == [f"urn:celltrail:isbt128:unit:{case.prc}"]  # thaw
    assert all(e["eventTimeZoneOffset"] in ("+01:00", "+02:00") for e in events)
    assert {e["celltrail:custodyRecord"].rsplit(":", 2)[1] for e in events} == {case.coi}

    # Exporting again gives the same events with the same IDs.
    again = await world.ok("coord", "GET", f"/api/v1/cases/{case.coi}/epcis")
    assert again["epcisBody"]["eventList"] == events


async def test_shipment_export_holds_only_that_leg(journey):
    world, case = journey
    document = await world.ok("courier2", "GET", f"/api/v1/shipments/{case.ship2}/epcis")
    assert_conformant(document)
    events = document["epcisBody"]["eventList"]
    assert [e["bizStep"] for e in events] == [
        "packing",
        "shipping",
        "receiving",
        "receiving",
        "receiving",
        "unpacking",
    ]
    shipment = f"urn:celltrail:shipment:{case.ship2}"
    assert all(shipment in ([*e.get("epcList", []), e.get("parentID")]) for e in events)
    # The shipment leaves the manufacturing site: its read point is the GLN.
    assert events[1]["readPoint"] == {"id": f"https://id.gs1.org/414/{CTA_GLN}"}


async def test_export_routes_refuse_wrong_roles_and_other_sites(journey):
    world, case = journey
    assert_problem(await world.call("courier1", "GET", f"/api/v1/cases/{case.coi}/epcis"), 403, "roles")
    other = await world.new_case("Not shipped yet")
    assert_problem(await world.call("mfg", "GET", f"/api/v1/cases/{other}/epcis"), 404)
    # Pharmacists at the hospital do not see the starting material's leg.
    assert_problem(await world.call("pharm", "GET", f"/api/v1/shipments/{case.ship1}/epcis"), 404)
    assert (await world.call("pharm", "GET", f"/api/v1/shipments/{case.ship2}/epcis")).status_code == 200


async def test_service_accounts_get_no_records_or_exports(journey):
    world, case = journey
    world.headers["bridge1"] = await make_user(
        world.client, world.headers["admin"], "bridge1", ["bridge"], ["CTA"]
    )
    for path in (
        f"/api/v1/shipments/{case.ship2}/epcis",
        f"/api/v1/shipments/{case.ship2}/readings.csv",
        f"/api/v1/cases/{case.coi}/epcis",
        f"/api/v1/cases/{case.coi}/report.pdf",
        "/api/v1/exports/alerts.csv",
    ):
        assert_problem(await world.call("bridge1", "GET", path), 403, "roles")


# ------------------------------------------------------------------------------------------------ capture


def _event(step: str, epcs: list[str], site_uri: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": "+00:00",
        "epcList": epcs,
        "action": "OBSERVE",
        "bizStep": step,
        "readPoint": {"id": site_uri},
        **extra,
    }


def _document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat(),
        "epcisBody": {"eventList": list(events)},
    }


async def _chain_length(database_url: str) -> int:
    return int((await sql(database_url, "SELECT count(*) AS n FROM custody_events"))[0]["n"])


async def _packed_shipment(
    world: World, database_url: str, container: str | None = None
) -> tuple[str, str, str]:
    coi = await world.new_case("Captured journey")
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    if container is not None:
        await sql(database_url, "UPDATE shipments SET container_id = $2 WHERE id = $1", ship, container)
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    return coi, aph, ship


async def test_capture_records_partner_events_through_the_state_machine(journey, module_database):
    world, _case = journey
    coi, aph, ship = await _packed_shipment(world, module_database)
    shipment = f"urn:celltrail:shipment:{ship}"
    pickup = _document(
        _event("shipping", [shipment], "urn:celltrail:site:USZ-APH", disposition="in_transit"),
        _event("inspecting", [shipment], "urn:celltrail:site:USZ-APH"),
    )
    result = await world.ok("courier1", "POST", "/api/v1/epcis/capture", json=pickup)
    assert result["events"] == 2
    [accepted] = result["accepted"]
    assert (accepted["index"], accepted["action"]) == (0, "pickup")
    assert accepted["event_id"].startswith("ni:///sha-256;")  # no eventID given: the event hash
    [skipped] = result["rejected"]
    assert skipped["index"] == 1
    assert "'inspecting' is not captured" in skipped["reason"]
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "in_transit"

    # The same document again changes nothing and answers the same.
    before = await _chain_length(module_database)
    assert await world.ok("courier1", "POST", "/api/v1/epcis/capture", json=pickup) == result
    assert await _chain_length(module_database) == before

    # Receiving at the manufacturing site, named by its GLN (SGLN form), by the manufacturing account.
    arrival = _document(
        _event("arriving", [shipment], "urn:epc:id:sgln:7612345.00001.0", eventID=f"urn:uuid:{uuid.uuid4()}"),
        _event(
            "receiving", [shipment, f"urn:celltrail:isbt128:unit:{aph}"], f"https://id.gs1.org/414/{CTA_GLN}"
        ),
    )
    result = await world.ok("mfg", "POST", "/api/v1/epcis/capture", json=arrival)
    assert [a["action"] for a in result["accepted"]] == ["receive", "receive"]
    assert result["accepted"][0]["event_id"] == arrival["epcisBody"]["eventList"][0]["eventID"]
    view = await world.ok("mfg", "GET", f"/api/v1/shipments/{ship}/receipt")
    assert view["missing"] == []
    await accept_receipt(world, "mfg", ship)
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    assert [e["action"] for e in timeline["events"]][-4:] == ["pickup", "receive", "receive", "receipt"]


async def test_capture_refusals_are_recorded_like_scans(journey, module_database):
    world, _case = journey
    coi, _aph, ship = await _packed_shipment(world, module_database)
    # A receiving event from a courier: the state machine refuses it (wrong role) and records that.
    wrong = _document(_event("receiving", [f"urn:celltrail:shipment:{ship}"], "urn:celltrail:site:CTA"))
    result = await world.ok("courier1", "POST", "/api/v1/epcis/capture", json=wrong)
    [refused] = result["rejected"]
    assert refused["refusal"] == "wrong_role"
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    assert timeline["events"][-1]["id"] == refused["custody_event_id"]
    assert timeline["events"][-1]["outcome"] == "refused"

    strangers = _document(
        _event("shipping", ["urn:epc:id:sgtin:0614141.107346.2017"], "urn:celltrail:site:USZ-APH"),
        _event("shipping", [f"urn:celltrail:shipment:{ship}"], "https://id.gs1.org/414/0614141000005"),
    )
    result = await world.ok("courier1", "POST", "/api/v1/epcis/capture", json=strangers)
    reasons = [r["reason"] for r in result["rejected"]]
    assert "is not a Celltrail unit or shipment" in reasons[0]
    assert "names no Celltrail site" in reasons[1]
    assert result["accepted"] == []


async def test_capture_finds_shipments_by_their_container_sscc(journey, module_database):
    world, _case = journey
    _coi, _aph, ship = await _packed_shipment(world, module_database, container=f"(00){SSCC}")
    exported = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}/epcis")
    assert_conformant(exported)
    assert exported["epcisBody"]["eventList"][0]["parentID"] == f"https://id.gs1.org/00/{SSCC}"
    document = _document(
        _event("shipping", ["urn:epc:id:sscc:7612345.0000000001"], "urn:celltrail:site:USZ-APH")
    )
    result = await world.ok("courier1", "POST", "/api/v1/epcis/capture", json=document)
    assert [a["action"] for a in result["accepted"]] == ["pickup"], result
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "in_transit"


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            lambda e: e.update(bizStep="teleporting"),
            "epcisBody.eventList[1].bizStep",
            "not a CBV 2.0 business step",
        ),
        (
            lambda e: e.update(bizStep="https://example.com/steps/teleporting"),
            "epcisBody.eventList[1].bizStep",
            "not a CBV 2.0 business step",
        ),
        (lambda e: e.pop("eventTime"), "epcisBody.eventList[1]", "'eventTime' is a required property"),
        (
            lambda e: e.update(
                sensorElementList=[{"sensorReport": [{"type": "Temperature", "value": 5.1, "uom": "KGM"}]}]
            ),
            "epcisBody.eventList[1].sensorElementList[0].sensorReport[0].uom",
            "not a temperature unit",
        ),
        (
            lambda e: e.update(sourceList=[{"type": "urn:example:sdt:previous_owner", "source": "urn:x:y"}]),
            "epcisBody.eventList[1].sourceList[0].type",
            "not a CBV 2.0 source/destination type",
        ),
        (
            lambda e: e.update(eventTime="2026-02-30T10:00:00Z"),
            "epcisBody.eventList[1].eventTime",
            "date-time",
        ),
    ],
)
async def test_non_conformant_documents_apply_nothing(journey, module_database, change, path, words):
    world, _case = journey
    _coi, _aph, ship = await _packed_shipment(world, module_database)
    good = _event("shipping", [f"urn:celltrail:shipment:{ship}"], "urn:celltrail:site:USZ-APH")
    bad = copy.deepcopy(good)
    change(bad)
    before = await _chain_length(module_database)
    response = await world.call("courier1", "POST", "/api/v1/epcis/capture", json=_document(good, bad))
    body = assert_problem(response, 422, "nothing was applied")
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert path in fields, fields
    assert words in fields[path]
    assert await _chain_length(module_database) == before
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "packed"


async def test_official_examples_pass_validation_and_name_nothing_of_ours(journey, module_database):
    world, _case = journey
    examples = sorted((SPECS / "examples").glob("*.jsonld"))
    assert len(examples) == 5
    before = await _chain_length(module_database)
    for example in examples:
        document = json.loads(example.read_text())
        response = await world.call("courier1", "POST", "/api/v1/epcis/capture", json=document)
        assert response.status_code == 200, (example.name, response.text)
        result = response.json()
        assert result["accepted"] == []
        assert len(result["rejected"]) == len(document["epcisBody"]["eventList"])
    assert await _chain_length(module_database) == before


async def test_capture_without_the_schema_answers_503(journey, monkeypatch, tmp_path):
    world, _case = journey
    monkeypatch.setenv(SCHEMA_ENV, str(tmp_path / "missing.json"))
    response = await world.call("courier1", "POST", "/api/v1/epcis/capture", json=_document())
    assert_problem(response, 503, "EPCIS 2.0 JSON schema", SCHEMA_ENV)


async def test_capture_is_for_those_who_scan(journey):
    world, _case = journey
    for who in ("coord", "qa"):
        assert_problem(await world.call(who, "POST", "/api/v1/epcis/capture", json=_document()), 403, "roles")
