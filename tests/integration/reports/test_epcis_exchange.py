"""EPCIS 2.0 over HTTP: a full case exported (validated against GS1's schema with format checks and CBV
2.0 vocabulary), a partner's documents captured as custody scans (idempotent, state machine applied,
non-conformant documents applying nothing), and who may do what."""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
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

from backend.epcis import jobs
from backend.epcis.capture import CAPTURE_LIMIT, FILE_SIZE_LIMIT
from backend.epcis.eventid import event_hash_id
from backend.epcis.validate import PACKAGED, SCHEMA_ENV, validate_document
from celltrail_shared.identifiers import gs1_check_digit
from tests.integration.helpers import assert_problem, make_site, make_user
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
    # The temperature observed on the way is its own event, just before the decision it informed; the
    # decision carries the disposition decided, and never stands beside an alarm.
    reported = steps["sensor_reporting"]
    assert len(reported) == 2
    for sensors, receipt in zip(reported, receipts, strict=True):
        assert "disposition" not in sensors
        assert "sensorElementList" not in receipt
        assert events[events.index(sensors) + 1] == receipt
    for event in events:
        exceptions = [
            r.get("exception") for e in event.get("sensorElementList", []) for r in e["sensorReport"]
        ]
        assert "ALARM_CONDITION" not in exceptions or event.get("disposition") != "conformant"
    first, second = (r["sensorElementList"] for r in reported)
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
        "sensor_reporting",
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


CAPTURE = "/api/v1/epcis/capture"


async def _submit(world: World, who: str, document: Any, behaviour: str | None = None) -> Any:
    headers = dict(world.headers[who])
    if behaviour is not None:
        headers["GS1-Capture-Error-Behaviour"] = behaviour
    return await world.client.request("POST", CAPTURE, headers=headers, json=document)


async def _capture(world: World, who: str, document: Any, behaviour: str | None = None) -> dict[str, Any]:
    """Capture a document as `who` and return its capture job (202, then GET on the Location)."""
    response = await _submit(world, who, document, behaviour)
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/api/v1/epcis/capture/[0-9a-f]{32}", location), location
    assert response.headers["GS1-EPCIS-Capture-Limit"] == str(CAPTURE_LIMIT)
    job = await world.ok(who, "GET", location)
    assert job["captureID"] == location.rsplit("/", 1)[1]
    assert job["running"] is False
    assert job["captureErrorBehaviour"] == (behaviour or "rollback")
    assert job["eventCount"] == len(document["epcisBody"]["eventList"])
    receipt = response.json()
    assert (receipt["running"], receipt["success"]) == (False, job["success"])
    return dict(job)


def _statuses(job: dict[str, Any]) -> list[str]:
    return [e["status"] for e in job["events"]]


async def test_capture_records_partner_events_through_the_state_machine(journey, module_database):
    world, _case = journey
    coi, aph, ship = await _packed_shipment(world, module_database)
    shipment = f"urn:celltrail:shipment:{ship}"
    pickup = _document(
        _event("shipping", [shipment], "urn:celltrail:site:USZ-APH", disposition="in_transit"),
        _event("inspecting", [shipment], "urn:celltrail:site:USZ-APH"),
    )
    job = await _capture(world, "courier1", pickup)
    assert job["success"] is True
    assert job["errors"] == []
    recorded, ignored = job["events"]
    assert (recorded["index"], recorded["status"], recorded["action"]) == (0, "recorded", "pickup")
    assert recorded["eventID"].startswith("ni:///sha-256;")  # no eventID given: the event hash
    assert (ignored["index"], ignored["status"]) == (1, "ignored")
    assert "'inspecting' is not a custody step" in ignored["reason"]
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "in_transit"

    # The same document again records nothing more and answers the same.
    before = await _chain_length(module_database)
    again = await _capture(world, "courier1", pickup)
    assert again["captureID"] != job["captureID"]
    assert again["events"] == job["events"]
    assert await _chain_length(module_database) == before

    # Receiving at the manufacturing site, named by its GLN (SGLN form), by the manufacturing account.
    arrival = _document(
        _event("arriving", [shipment], "urn:epc:id:sgln:7612345.00001.0", eventID=f"urn:uuid:{uuid.uuid4()}"),
        _event(
            "receiving", [shipment, f"urn:celltrail:isbt128:unit:{aph}"], f"https://id.gs1.org/414/{CTA_GLN}"
        ),
    )
    job = await _capture(world, "mfg", arrival)
    assert [(e["status"], e.get("action")) for e in job["events"]] == [("recorded", "receive")] * 2
    assert job["events"][0]["eventID"] == arrival["epcisBody"]["eventList"][0]["eventID"]
    view = await world.ok("mfg", "GET", f"/api/v1/shipments/{ship}/receipt")
    assert view["missing"] == []
    # Exported as the partner said it: its eventID, its business step.
    exported = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}/epcis")
    assert_conformant(exported)
    [arrived] = by_step(exported)["arriving"]
    assert arrived["eventID"] == arrival["epcisBody"]["eventList"][0]["eventID"]
    queried = await world.ok("mfg", "GET", "/api/v1/epcis/events", params={"EQ_bizStep": "arriving"})
    assert arrived in queried["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    await accept_receipt(world, "mfg", ship)
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    assert [e["action"] for e in timeline["events"]][-4:] == ["pickup", "receive", "receive", "receipt"]


async def test_capture_is_all_or_nothing_unless_the_client_asks_to_proceed(journey, module_database, caplog):
    world, _case = journey
    coi, _aph, ship = await _packed_shipment(world, module_database)
    shipment = f"urn:celltrail:shipment:{ship}"
    # A good pick-up, then a receiving event from a courier, which the state machine refuses.
    document = _document(
        _event("shipping", [shipment], "urn:celltrail:site:USZ-APH"),
        _event("receiving", [shipment], "urn:celltrail:site:CTA"),
    )
    before = await _chain_length(module_database)
    job = await _capture(world, "courier1", document)
    assert job["success"] is False
    assert _statuses(job) == ["rolled_back", "error"]
    assert job["events"][1]["refusal"] == "wrong_role"
    [error] = job["errors"]
    assert error["instance"] == "epcisBody.eventList[1]"
    assert error["eventID"] == job["events"][1]["eventID"]
    assert "needs the role" in error["detail"]
    # Nothing was recorded: not the good event, not the refusal (which the log keeps).
    assert await _chain_length(module_database) == before
    [logged] = [r for r in caplog.records if r.getMessage() == "EPCIS capture event refused"]
    assert (logged.capture, logged.refusal, logged.kept) == (job["captureID"], "wrong_role", False)
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "packed"

    # Asked to proceed, the good event is recorded and the refused one is recorded as a refusal.
    job = await _capture(world, "courier1", document, behaviour="proceed")
    assert job["success"] is True
    assert _statuses(job) == ["recorded", "error"]
    assert [e["instance"] for e in job["errors"]] == ["epcisBody.eventList[1]"]
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "in_transit"
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    assert [(e["action"], e["outcome"]) for e in timeline["events"][-2:]] == [
        ("pickup", "accepted"),
        ("receive", "refused"),
    ]
    assert timeline["events"][-1]["id"] == job["events"][1]["custodyEventID"]

    # Any other error behaviour is refused by name.
    response = await _submit(world, "courier1", document, behaviour="sometimes")
    body = assert_problem(response, 422, "GS1-Capture-Error-Behaviour", "rollback or proceed")
    assert body["errors"] == [{"field": "GS1-Capture-Error-Behaviour", "message": "unsupported"}]


async def test_capture_errors_and_ignored_events(journey, module_database):
    world, _case = journey
    _coi, _aph, ship = await _packed_shipment(world, module_database)
    shipment = f"urn:celltrail:shipment:{ship}"
    document = _document(
        # Someone else's product: no concern of Celltrail's, and no error.
        _event("shipping", ["urn:epc:id:sgtin:0614141.107346.2017"], "urn:celltrail:site:USZ-APH"),
        # Ours, at a place that is no Celltrail site.
        _event("shipping", [shipment], "https://id.gs1.org/414/0614141000005"),
        # Ours together with someone else's: a custody step names only Celltrail's items.
        _event("shipping", [shipment, "urn:epc:id:sgtin:0614141.107346.2018"], "urn:celltrail:site:USZ-APH"),
    )
    job = await _capture(world, "courier1", document, behaviour="proceed")
    assert _statuses(job) == ["ignored", "error", "error"]
    assert "names none of Celltrail's units or shipments" in job["events"][0]["reason"]
    assert "names no Celltrail site" in job["events"][1]["reason"]
    assert "is not a Celltrail unit or shipment" in job["events"][2]["reason"]
    assert job["success"] is True
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "packed"


async def _lone_courier(world: World) -> None:
    """A courier bound only to a site of its own, sharing none with the journey's people."""
    if "lone-courier" not in world.headers:
        await make_site(world.client, world.headers["admin"], "KSB-EPC")
        world.headers["lone-courier"] = await make_user(
            world.client, world.headers["admin"], "lone-courier", ["courier"], ["KSB-EPC"]
        )


async def test_capture_finds_shipments_by_their_container_sscc(journey, module_database):
    world, _case = journey
    _coi, _aph, ship = await _packed_shipment(world, module_database, container=f"(00){SSCC}")
    exported = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}/epcis")
    assert_conformant(exported)
    assert exported["epcisBody"]["eventList"][0]["parentID"] == f"https://id.gs1.org/00/{SSCC}"
    document = _document(
        _event("shipping", ["urn:epc:id:sscc:7612345.0000000001"], "urn:celltrail:site:USZ-APH")
    )
    # A courier of another site learns nothing of the container: it is someone else's, like any other.
    await _lone_courier(world)
    theirs = await _capture(world, "lone-courier", document)
    assert [e["status"] for e in theirs["events"]] == ["ignored"]
    assert ship not in json.dumps(theirs)
    job = await _capture(world, "courier1", document)
    assert [(e["status"], e["action"]) for e in job["events"]] == [("recorded", "pickup")], job
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "in_transit"


async def test_custom_business_steps_and_dispositions_are_accepted(journey, module_database):
    world, _case = journey
    _coi, _aph, ship = await _packed_shipment(world, module_database)
    shipment = f"urn:celltrail:shipment:{ship}"
    document = _document(
        # A courier's own step: conformant EPCIS 2.0, not a custody step Celltrail records.
        _event(
            "https://courier.example.com/voc/handed_to_airline",
            [shipment],
            "urn:celltrail:site:USZ-APH",
            disposition="https://courier.example.com/voc/on_dry_ice",
        ),
        # A CBV step with a disposition of the courier's own: recorded as the pick-up it is.
        _event(
            "https://ref.gs1.org/cbv/BizStep-shipping",
            [shipment],
            "urn:celltrail:site:USZ-APH",
            disposition="urn:courier-example:disp:sealed",
        ),
    )
    assert validate_document(document) == []
    job = await _capture(world, "courier1", document)
    assert job["success"] is True, job
    assert _statuses(job) == ["ignored", "recorded"]
    assert "handed_to_airline" in job["events"][0]["reason"]
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "in_transit"
    # The courier's disposition is kept with the step and comes back in the export and the query.
    exported = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}/epcis")
    assert_conformant(exported)
    shipped = by_step(exported)["shipping"]
    assert [e["disposition"] for e in shipped] == ["urn:courier-example:disp:sealed"]
    queried = await world.ok(
        "coord", "GET", "/api/v1/epcis/events", params={"EQ_disposition": "urn:courier-example:disp:sealed"}
    )
    assert [e["eventID"] for e in queried["epcisBody"]["queryResults"]["resultsBody"]["eventList"]] == [
        shipped[0]["eventID"]
    ]


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            lambda e: e.update(bizStep="teleporting"),
            "epcisBody.eventList[1].bizStep",
            "not a CBV 2.0 business step",
        ),
        (
            # CBV's own namespace holds only CBV's terms.
            lambda e: e.update(bizStep="https://ref.gs1.org/cbv/BizStep-teleporting"),
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
            lambda e: e.update(sourceList=[{"type": "previous_owner", "source": "urn:x:y"}]),
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
    response = await _submit(world, "courier1", _document(good, bad), behaviour="proceed")
    body = assert_problem(response, 422, "nothing was applied")
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert path in fields, fields
    assert words in fields[path]
    assert await _chain_length(module_database) == before
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "packed"


async def test_official_examples_are_captured_and_name_nothing_of_ours(journey, module_database):
    world, _case = journey
    examples = sorted((SPECS / "examples").glob("*.jsonld"))
    assert len(examples) == 5
    before = await _chain_length(module_database)
    for example in examples:
        document = json.loads(example.read_text())
        job = await _capture(world, "courier1", document)
        assert job["success"] is True, (example.name, job)
        assert set(_statuses(job)) == {"ignored"}, example.name
    assert await _chain_length(module_database) == before


async def test_capture_limits_are_announced_and_enforced(journey, module_database):
    world, _case = journey
    announced = {
        "GS1-EPCIS-Capture-Limit": str(CAPTURE_LIMIT),
        "GS1-EPCIS-Capture-File-Size-Limit": str(FILE_SIZE_LIMIT),
    }
    response = await world.call("courier1", "OPTIONS", CAPTURE)
    assert response.status_code == 204, response.text
    assert {k: response.headers.get(k) for k in announced} == announced
    assert response.headers["GS1-Capture-Error-Behaviour"] == "rollback, proceed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"OPTIONS", "GET", "POST"}
    response = await world.call("courier1", "GET", CAPTURE)
    assert response.status_code == 200, response.text
    assert {k: response.headers.get(k) for k in announced} == announced

    _coi, _aph, ship = await _packed_shipment(world, module_database)
    event = _event("shipping", [f"urn:celltrail:shipment:{ship}"], "urn:celltrail:site:USZ-APH")
    before = await _chain_length(module_database)
    response = await _submit(world, "courier1", _document(*[event] * (CAPTURE_LIMIT + 1)))
    assert_problem(
        response, 413, f"at most {CAPTURE_LIMIT}", "GS1-EPCIS-Capture-Limit", "nothing was applied"
    )
    assert response.headers["GS1-EPCIS-Capture-Limit"] == str(CAPTURE_LIMIT)
    padded = _document(event)
    padded["celltrail:note"] = "x" * FILE_SIZE_LIMIT
    response = await _submit(world, "courier1", padded)
    assert_problem(response, 413, str(FILE_SIZE_LIMIT))
    assert await _chain_length(module_database) == before
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["status"] == "packed"


async def test_a_capture_job_is_seen_only_by_its_submitters_sites(journey, module_database):
    world, _case = journey
    job = await _capture(world, "courier1", _document())
    assert (job["success"], job["events"]) == (True, [])
    path = f"{CAPTURE}/{job['captureID']}"
    # The manufacturing account shares a site with the courier; a courier of another site does not.
    assert (await world.ok("mfg", "GET", path))["captureID"] == job["captureID"]
    await _lone_courier(world)
    theirs = await world.call("lone-courier", "GET", path)
    nowhere = await world.call("lone-courier", "GET", f"{CAPTURE}/{'0' * 32}")
    assert_problem(theirs, 404, "no capture job")
    assert theirs.json()["detail"].replace(job["captureID"], "ID") == nowhere.json()["detail"].replace(
        "0" * 32, "ID"
    )
    listed = await world.ok("lone-courier", "GET", CAPTURE)
    assert job["captureID"] not in [j["captureID"] for j in listed]
    # A submitter moved to another site still sees their own job; the site they left does not see it
    # through them.
    await make_site(world.client, world.headers["admin"], "KSB-MOVE")
    world.headers["moving-courier"] = await make_user(
        world.client, world.headers["admin"], "moving-courier", ["courier"], ["KSB-EPC"]
    )
    own = await _capture(world, "moving-courier", _document())
    await world.ok(
        "admin",
        "PATCH",
        "/api/v1/users/moving-courier",
        json={"sites": ["KSB-MOVE"], "reason": "moved to another site"},
    )
    assert (await world.ok("moving-courier", "GET", f"{CAPTURE}/{own['captureID']}"))["success"] is True
    assert own["captureID"] in [j["captureID"] for j in await world.ok("moving-courier", "GET", CAPTURE)]
    assert job["captureID"] in [j["captureID"] for j in await world.ok("courier1", "GET", CAPTURE)]


async def test_a_capture_job_s_life(journey, module_database):
    """Running until its transaction ends; a job a stopped server left running is reported as failed,
    with nothing recorded."""
    world, _case = journey
    users = await sql(module_database, "SELECT id FROM users WHERE username = 'courier1'")
    running, stale = jobs.new_id(), jobs.new_id()
    await sql(
        module_database,
        """INSERT INTO epcis_captures (id, submitted_by, sites, error_behaviour, event_count, created_at)
           VALUES ($1, $3, '{CRX}', 'rollback', 2, now()),
                  ($2, $3, '{CRX}', 'proceed', 1, now() - $4::interval)""",
        running,
        stale,
        users[0]["id"],
        timedelta(minutes=jobs.STALE_MINUTES + 1),
    )
    job = await world.ok("courier1", "GET", f"{CAPTURE}/{running}")
    assert (job["running"], job["success"], job["errors"], job["events"]) == (True, None, [], [])
    assert "finishedAt" not in job
    job = await world.ok("courier1", "GET", f"{CAPTURE}/{stale}")
    assert (job["running"], job["success"]) == (False, False)
    [error] = job["errors"]
    assert "nothing of the document was recorded" in error["detail"]
    assert job["finishedAt"] >= job["createdAt"]


def _gtin(item: str) -> str:
    body = "0761234500" + item
    return body + str(gs1_check_digit(body))


async def test_units_of_a_product_with_a_gtin_are_sgtins(journey, module_database):
    world, _case = journey
    products = "/api/v1/epcis/products"
    apheresis, car_t = _gtin("002"), _gtin("003")
    wrong = apheresis[:-1] + str((int(apheresis[-1]) + 1) % 10)
    assert_problem(
        await world.call("admin", "PUT", f"{products}/Apheresis", json={"gtin": wrong}), 422, "check"
    )
    assert_problem(await world.call("coord", "PUT", f"{products}/Apheresis", json={"gtin": apheresis}), 403)
    # A GTIN-13 is written as the 14 digits of GS1 Digital Link.
    set_ = await world.ok("admin", "PUT", f"{products}/Apheresis", json={"gtin": apheresis[1:]})
    assert set_ == {"product": "Apheresis", "gtin": apheresis}
    taken = await world.call("admin", "PUT", f"{products}/Other", json={"gtin": apheresis})
    assert_problem(taken, 422, "already names the product Apheresis")
    try:
        _coi, aph, ship = await _packed_shipment(world, module_database)
        sgtin = f"https://id.gs1.org/01/{apheresis}/21/{aph.replace('-', '')}"
        exported = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}/epcis")
        assert_conformant(exported)
        [packed] = by_step(exported)["packing"]
        assert packed["childEPCs"] == [sgtin]
        assert not any("isbt128" in json.dumps(e) for e in exported["epcisBody"]["eventList"])

        # A GTIN of another product does not name this unit.
        await world.ok("admin", "PUT", f"{products}/Autologous CAR-T", json={"gtin": car_t})
        shipment = f"urn:celltrail:shipment:{ship}"
        mismatched = sgtin.replace(apheresis, car_t)
        job = await _capture(
            world,
            "courier1",
            _document(_event("shipping", [shipment, mismatched], "urn:celltrail:site:USZ-APH")),
        )
        assert _statuses(job) == ["error"]
        assert "is not the GTIN of unit" in job["events"][0]["reason"]

        # Captured by its SGTIN in EPC URN form, the unit is recognised.
        urn = f"urn:epc:id:sgtin:7612345.{apheresis[0]}{apheresis[8:13]}.{aph.replace('-', '')}"
        job = await _capture(
            world, "courier1", _document(_event("shipping", [shipment, urn], "urn:celltrail:site:USZ-APH"))
        )
        assert [(e["status"], e.get("action")) for e in job["events"]] == [("recorded", "pickup")], job
        found = await world.ok("coord", "GET", "/api/v1/epcis/events", params={"MATCH_epc": sgtin})
        steps = [e["bizStep"] for e in found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]
        assert steps[-2:] == ["packing", "shipping"]
        listed = await world.ok("courier1", "GET", products)
        assert {p["product"]: p["gtin"] for p in listed} == {
            "Apheresis": apheresis,
            "Autologous CAR-T": car_t,
        }
    finally:
        # The module's other tests export units by their Celltrail URNs.
        await sql(module_database, "DELETE FROM epcis_products")


async def test_a_body_that_is_not_json_is_refused_by_name(journey, module_database):
    world, _case = journey
    headers = {**world.headers["courier1"], "Content-Type": "application/ld+json"}
    response = await world.client.post(CAPTURE, headers=headers, content=b'{"type": "EPCISDocument",')
    assert_problem(response, 422, "not JSON", "nothing was applied")


async def test_capture_without_the_schema_answers_503(journey, monkeypatch, tmp_path):
    world, _case = journey
    monkeypatch.setenv(SCHEMA_ENV, str(tmp_path / "missing.json"))
    response = await _submit(world, "courier1", _document())
    assert_problem(response, 503, "EPCIS 2.0 JSON schema", SCHEMA_ENV)


async def test_capture_is_for_those_who_scan(journey):
    world, _case = journey
    for who in ("coord", "qa"):
        assert_problem(await _submit(world, who, _document()), 403, "roles")
        assert_problem(await world.call(who, "GET", CAPTURE), 403, "roles")
