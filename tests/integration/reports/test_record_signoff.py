"""The record a QA person signs (issue 21, findings 6 and 12): the product's genealogy as an EPCIS
TransformationEvent, and the PDF and JSON record with everything a reviewer needs."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from reports_support import Case, module_client, module_database, world_and_case

from backend.epcis.eventid import event_hash_id
from backend.epcis.validate import PACKAGED, validate_document
from tests.integration.journey import World

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
