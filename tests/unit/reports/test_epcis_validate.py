"""Conformance checking: GS1's schema with our format checks, plus CBV 2.0 vocabulary the schema does not
enforce; the vocabulary lists agree with the schema's; the schema is found, cached, or missing clearly."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from backend.epcis import validate, vocabulary
from backend.epcis.formats import is_date_time, is_uri, parse_date_time

SPECS = Path(__file__).resolve().parents[2] / "fixtures" / "epcis"
EXAMPLES = sorted((SPECS / "examples").glob("*.jsonld"))


def schema_enum(name: str) -> set[str]:
    definitions = json.loads((validate.PACKAGED / "EPCIS-JSON-Schema.json").read_text())["definitions"]
    return set(definitions[name]["anyOf"][1]["enum"])


@pytest.mark.parametrize(
    ("definition", "terms"),
    [
        ("bizStep", vocabulary.BIZ_STEPS),
        ("disposition", vocabulary.DISPOSITIONS),
        ("source-dest-type", vocabulary.SOURCE_DESTINATION_TYPES),
        ("bizTransaction-type", vocabulary.BIZ_TRANSACTION_TYPES),
        ("error-reason", vocabulary.ERROR_REASONS),
        ("measurementType", vocabulary.MEASUREMENT_TYPES),
        ("sensorAlertType", vocabulary.SENSOR_ALERT_TYPES),
        ("component", vocabulary.COMPONENTS),
    ],
)
def test_vocabulary_is_the_schemas(definition, terms):
    assert terms == schema_enum(definition)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_official_examples_conform(example):
    assert validate.validate_document(json.loads(example.read_text())) == []


def test_the_default_schema_is_beside_the_repository(monkeypatch):
    monkeypatch.delenv(validate.SCHEMA_ENV, raising=False)
    assert validate.schema_path() == validate.PACKAGED / "EPCIS-JSON-Schema.json"
    assert validate.validator() is validate.validator()  # loaded once


@pytest.mark.parametrize(
    "content", [None, "{not json", '{"type": 12}'], ids=["missing", "not-json", "not-a-schema"]
)
def test_an_unusable_schema_says_what_to_set(monkeypatch, tmp_path, content):
    path = tmp_path / "schema.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv(validate.SCHEMA_ENV, str(path))
    with pytest.raises(validate.SchemaUnavailable, match=validate.SCHEMA_ENV):
        validate.validate_document({"type": "EPCISDocument"})


def sensor_document() -> dict:
    return json.loads((SPECS / "examples" / "SensorDataExample2.jsonld").read_text())


@pytest.mark.parametrize(
    ("uom", "message"),
    [
        ("KGM", "not a temperature unit"),
        ("celsius", "not a UN/CEFACT Rec 20 unit code"),
        (None, "needs its unit"),
    ],
)
def test_temperature_units(uom, message):
    document = sensor_document()
    report = document["epcisBody"]["eventList"][0]["sensorElementList"][0]["sensorReport"][0]
    assert report["type"] == "Temperature"
    if uom is None:
        del report["uom"]
    else:
        report["uom"] = uom
    [problem] = validate.validate_document(document)
    assert problem.path == "epcisBody.eventList[0].sensorElementList[0].sensorReport[0].uom"
    assert message in problem.message


def test_web_uri_forms_of_cbv_terms_are_cbv():
    document = sensor_document()
    event = document["epcisBody"]["eventList"][0]
    event["bizStep"] = "https://ref.gs1.org/cbv/BizStep-inspecting"
    event["disposition"] = "https://ref.gs1.org/cbv/Disp-conformant"
    assert validate.validate_document(document) == []
    event["disposition"] = "https://ref.gs1.org/cbv/Disp-teleported"
    [problem] = validate.validate_document(document)
    assert problem.path == "epcisBody.eventList[0].disposition"
    assert problem.message.startswith(
        "'https://ref.gs1.org/cbv/Disp-teleported' is not a CBV 2.0 disposition"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bizStep", "https://courier.example.com/voc/handed_to_airline"),
        ("bizStep", "urn:courier-example:bizstep:loading_to_aircraft"),
        ("disposition", "https://courier.example.com/voc/on_dry_ice"),
    ],
)
def test_custom_vocabulary_uris_are_allowed(field, value):
    """EPCIS 2.0 lets a business step or a disposition be any absolute URI outside CBV's namespaces."""
    document = sensor_document()
    document["epcisBody"]["eventList"][0][field] = value
    assert validate.validate_document(document) == []


@pytest.mark.parametrize(
    "value", ["handed_to_airline", "urn:epcglobal:cbv:bizstep:flying", "http:no-authority"]
)
def test_words_and_cbv_namespaces_are_not_custom_uris(value):
    document = sensor_document()
    document["epcisBody"]["eventList"][0]["bizStep"] = value
    problems = validate.validate_document(document)
    assert [p.path for p in problems] == ["epcisBody.eventList[0].bizStep"], problems
    assert "absolute URI outside CBV's namespace" in problems[0].message


def test_problems_are_listed_all_at_once():
    document = sensor_document()
    event = copy.deepcopy(document["epcisBody"]["eventList"][0])
    event.pop("eventTime")
    event["bizTransactionList"] = [{"type": "invoice-ish", "bizTransaction": "urn:x:1"}]
    document["epcisBody"]["eventList"].append(event)
    problems = {(p.path, p.message.partition(";")[0]) for p in validate.validate_document(document)}
    assert problems == {
        ("epcisBody.eventList[1]", "'eventTime' is a required property"),
        (
            "epcisBody.eventList[1].bizTransactionList[0].type",
            "'invoice-ish' is not a CBV 2.0 business transaction type",
        ),
    }


def test_only_documents_are_captured():
    [problem] = validate.validate_document({"type": "ObjectEvent"})
    assert "EPCISDocument" in problem.message


@pytest.mark.parametrize(
    "value",
    [
        "urn:epc:id:sgtin:0614141.107346.2017",
        "https://id.gs1.org/00/040123450000001112",
        "geo:47.5,11.1",
        "urn:x:%20y",
    ],
)
def test_uris(value):
    assert is_uri(value)


@pytest.mark.parametrize("value", ["shipping", "in transit:x", "urn:x:%zz", "https://a/b#c#d", "1urn:x", ""])
def test_not_uris(value):
    assert not is_uri(value)


@pytest.mark.parametrize(
    "value", ["2026-02-28T10:00:00Z", "2024-02-29T23:59:60.5+14:00", "2005-07-11T11:30:47.0Z"]
)
def test_date_times(value):
    assert is_date_time(value)


@pytest.mark.parametrize(
    "value", ["2026-02-29T10:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T10:00:00", "2026-01-01 10:00:00Z"]
)
def test_not_date_times(value):
    assert not is_date_time(value)


def test_parsed_times_keep_microseconds():
    parsed = parse_date_time("2026-01-10T09:00:00.1234567+01:00")
    assert parsed.isoformat() == "2026-01-10T08:00:00.123457+00:00"
