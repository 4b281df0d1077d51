"""EPCIS 2.0 query: `GET /api/v1/epcis/events` with the standard parameters and nextPageToken paging,
scoped by the caller's sites, returning the export's very events (same eventIDs)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from backend.epcis import validate
from backend.epcis.identifiers import unit_uri as unit_uri_of
from tests.integration.helpers import assert_problem, make_site, make_user
from tests.integration.journey import World, build_world, released_bag, starting_material_at_manufacturing

EVENTS = "/api/v1/epcis/events"


async def _query(world: World, who: str, **params: Any) -> tuple[list[dict[str, Any]], str | None]:
    response = await world.call(who, "GET", EVENTS, params=params)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["type"] == "EPCISQueryDocument"
    assert not list(validate.validator().iter_errors(document)), "not valid against GS1's schema"
    link = response.headers.get("link")
    token = None
    if link:
        token = parse_qs(urlsplit(link.split(";")[0].strip("<>")).query)["nextPageToken"][0]
    return document["epcisBody"]["queryResults"]["resultsBody"]["eventList"], token


async def _all(world: World, who: str, **params: Any) -> list[dict[str, Any]]:
    events, token = await _query(world, who, **params)
    pages = 1
    while token:
        more, token = await _query(world, who, **params, nextPageToken=token)
        events += more
        pages += 1
        assert pages < 50
    return events


async def test_query_returns_the_exports_events_filtered_and_paged(client):
    world = await build_world(client)
    coi, aph, _ship = await starting_material_at_manufacturing(world)
    exported = (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/epcis"))["epcisBody"]["eventList"]
    assert len(exported) >= 6

    every = await _all(world, "coord")
    assert [e["eventID"] for e in every] == [e["eventID"] for e in exported]
    # Paging: two at a time gives the same events in the same order, over several pages.
    paged, token = await _query(world, "coord", perPage=2)
    assert token is not None
    assert 2 <= len(paged) <= 3
    assert [e["eventID"] for e in await _all(world, "coord", perPage=2)] == [e["eventID"] for e in exported]

    shipping = await _all(world, "coord", EQ_bizStep="https://ref.gs1.org/cbv/BizStep-shipping")
    assert shipping
    assert {e["bizStep"] for e in shipping} == {"shipping"}
    assert await _all(world, "coord", EQ_bizStep="shipping") == shipping

    aggregations = await _all(world, "coord", eventType="AggregationEvent")
    assert aggregations
    assert {e["type"] for e in aggregations} == {"AggregationEvent"}

    conformant = await _all(world, "coord", EQ_disposition="conformant")
    assert conformant
    assert {e["disposition"] for e in conformant} == {"conformant"}

    unit_uri = unit_uri_of(aph)
    naming = await _all(world, "coord", MATCH_epc=unit_uri)
    assert naming
    assert all(unit_uri in e.get("epcList", []) + e.get("childEPCs", []) for e in naming)

    at_cta = await _all(world, "coord", EQ_bizLocation="urn:celltrail:site:CTA")
    assert at_cta
    assert {e["bizLocation"]["id"] for e in at_cta} == {"urn:celltrail:site:CTA"}

    middle = exported[len(exported) // 2]["eventTime"]
    later = await _all(world, "coord", GE_eventTime=middle)
    earlier = await _all(world, "coord", LT_eventTime=middle)
    assert len(later) + len(earlier) == len(exported)
    assert all(e["eventTime"] >= middle for e in later)


async def test_query_shows_only_the_callers_sites(client):
    world = await build_world(client)
    await starting_material_at_manufacturing(world)
    root = world.headers["admin"]
    await make_site(client, root, "KSB")
    world.headers["stranger"] = await make_user(client, root, "stranger", ["coordinator"], ["KSB"])
    assert await _all(world, "stranger") == []
    assert await _all(world, "admin")


async def test_bad_parameters_are_refused_with_the_parameter_named(client):
    world = await build_world(client)
    for params, field in (
        ({"perPage": "0"}, "perPage"),
        ({"perPage": "many"}, "perPage"),
        ({"GE_eventTime": "yesterday"}, "GE_eventTime"),
        ({"eventType": "TransactionEvent"}, "eventType"),
        ({"MATCH_inputEPCs": "urn:x"}, "MATCH_inputEPCs"),
        ({"nextPageToken": "not-a-token"}, "nextPageToken"),
        ({"EQ_unknownThing": "x"}, "EQ_unknownThing"),
    ):
        response = await world.call("coord", "GET", EVENTS, params=params)
        body = assert_problem(response, 422)
        assert any(error["field"] == field for error in body["errors"]), body


async def test_a_products_genealogy_is_found_by_its_input_and_output_epcs(client):
    """MATCH_inputEPC and MATCH_outputEPC find the TransformationEvent that made a bag from its starting
    material; MATCH_anyEPC finds it with every other event naming the unit; MATCH_epc keeps to the
    objects an event is about (epcList, childEPCs), as EPCIS 2.0 has it."""
    world = await build_world(client)
    coi, prc = await released_bag(world)
    aph, bag = unit_uri_of(f"{coi}-APH-01"), unit_uri_of(prc)
    exported = (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/epcis"))["epcisBody"]["eventList"]
    made = [e for e in exported if e["type"] == "TransformationEvent"]
    assert len(made) == 1
    assert made[0]["inputEPCList"] == [aph]

    transformations = await _all(world, "coord", eventType="TransformationEvent")
    assert [e["eventID"] for e in transformations] == [made[0]["eventID"]]
    by_input = await _all(world, "coord", MATCH_inputEPC=aph)
    assert [e["eventID"] for e in by_input] == [made[0]["eventID"]]
    by_output = await _all(world, "coord", MATCH_outputEPC=bag)
    assert [e["eventID"] for e in by_output] == [made[0]["eventID"]]
    # The bag was made from the apheresis unit, not the other way round.
    assert await _all(world, "coord", MATCH_inputEPC=bag) == []
    assert await _all(world, "coord", MATCH_outputEPC=aph) == []

    about_aph = await _all(world, "coord", MATCH_epc=aph)
    assert about_aph
    assert made[0]["eventID"] not in {e["eventID"] for e in about_aph}
    anywhere = await _all(world, "coord", MATCH_anyEPC=aph)
    assert {e["eventID"] for e in anywhere} == {e["eventID"] for e in about_aph} | {made[0]["eventID"]}
    naming = [
        e
        for e in exported
        if aph
        in e.get("epcList", [])
        + e.get("childEPCs", [])
        + e.get("inputEPCList", [])
        + e.get("outputEPCList", [])
        + [e.get("parentID")]
    ]
    assert [e["eventID"] for e in anywhere] == [e["eventID"] for e in naming]
    # Two parameters together: an event must match both.
    both = await _all(world, "coord", MATCH_inputEPC=aph, MATCH_outputEPC=bag)
    assert [e["eventID"] for e in both] == [made[0]["eventID"]]
    assert await _all(world, "coord", MATCH_inputEPC=aph, eventType="ObjectEvent") == []
    # A shipment as a container (parentID) is MATCH_parentID's, not MATCH_epc's.
    parent = next(e["parentID"] for e in exported if e.get("parentID"))
    packed = await _all(world, "coord", MATCH_parentID=parent)
    assert packed
    assert {e["type"] for e in packed} == {"AggregationEvent"}
    assert {e["parentID"] for e in packed} == {parent}
    assert all(e["type"] != "AggregationEvent" for e in await _all(world, "coord", MATCH_epc=parent))
    assert {e["eventID"] for e in packed} <= {
        e["eventID"] for e in await _all(world, "coord", MATCH_anyEPC=parent)
    }
    # Comma-separated values: either one.
    assert len(await _all(world, "coord", MATCH_anyEPC=f"{aph},{bag}")) >= len(anywhere)


async def test_another_sites_user_finds_nothing_by_our_epcs(client):
    world = await build_world(client)
    coi, prc = await released_bag(world)
    root = world.headers["admin"]
    await make_site(client, root, "KSB-LAB", kind="manufacturing")
    world.headers["stranger"] = await make_user(client, root, "stranger", ["manufacturing"], ["KSB-LAB"])
    for name in ("MATCH_inputEPC", "MATCH_outputEPC", "MATCH_anyEPC", "MATCH_epc"):
        for uri in (unit_uri_of(f"{coi}-APH-01"), unit_uri_of(prc)):
            assert await _all(world, "stranger", **{name: uri}) == []
