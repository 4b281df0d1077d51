"""Custody rules a QA person signs off, each tried the way a hurried or careless user would break it:
signatures bound to the step, idempotency keys bound to one request, hand-overs only to people on the
route, and a bedside mismatch filed in every case involved."""

from __future__ import annotations

import uuid

import asyncpg

from tests.integration.helpers import admin, make_user
from tests.integration.journey import PASSWORD, World, bag_at_bedside, build_world
from tests.integration.test_custody_refusals import _case_with_packed_shipment, refused


def _signatures(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"username": who, "password": PASSWORD, "meaning": meaning} for who, meaning in pairs]


async def _events(world: World, coi: str) -> list[dict]:
    return (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["events"]


async def test_an_infusion_signed_with_meanings_of_other_steps_is_refused(client):
    world = await build_world(client)
    coi, bag = await bag_at_bedside(world)
    for pairs in (
        (("pharm", "released"), ("pharm2", "quarantined")),
        (("pharm", "administered"), ("pharm2", "administered")),
        (("pharm", "verified at bedside"), ("pharm2", "received and verified")),
    ):
        body = refused(
            await world.scan("pharm", "infuse", "USZ", f"&/{coi}", bag, signatures=_signatures(*pairs)),
            422,
            "signature_meaning",
        )
        assert "'verified at bedside'" in body["detail"]
        assert "'administered'" in body["detail"]
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bag}"))["status"] == "thawed"
    done = await world.scan(
        "pharm",
        "infuse",
        "USZ",
        f"&/{coi}",
        bag,
        signatures=_signatures(("pharm", "verified at bedside"), ("pharm2", "administered")),
    )
    assert done.status_code == 201, done.text


async def test_an_infusion_cosigned_by_a_pharmacist_of_another_site_is_refused(client):
    world = await build_world(client)
    coi, bag = await bag_at_bedside(world)
    # A pharmacist, but bound only to the manufacturing site: not one who may sign at USZ's bedside.
    root = await admin(client)
    await make_user(client, root, "ctapharm", ["pharmacist"], ["CTA"], password=PASSWORD)
    body = refused(
        await world.scan(
            "pharm",
            "infuse",
            "USZ",
            f"&/{coi}",
            bag,
            signatures=_signatures(("pharm", "verified at bedside"), ("ctapharm", "administered")),
        ),
        422,
        "signature_invalid",
    )
    assert body["detail"] == "signature refused"
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bag}"))["status"] == "thawed"


async def test_an_idempotency_key_reused_for_a_different_request_is_refused_and_audited(client):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    key = str(uuid.uuid4())
    first = await world.scan("nurse", "pack", "USZ-APH", ship, aph, key=key)
    assert first.status_code == 201, first.text
    # The very same scan sent again (its device clock read again): the first answer.
    again = await world.scan("nurse", "pack", "USZ-APH", ship, aph, key=key)
    assert again.status_code == 201
    assert again.json() == first.json()
    # A pickup's key sent with a hand-over: refused, not answered with the pickup's answer.
    pickup_key = str(uuid.uuid4())
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship, key=pickup_key)
    reused = await world.scan("courier1", "handover", "USZ-APH", ship, key=pickup_key, handover_to="courier2")
    assert reused.status_code == 422, reused.text
    assert reused.headers["content-type"].startswith("application/problem+json")
    assert "different request" in reused.json()["detail"]
    events = await _events(world, coi)
    assert [e["action"] for e in events].count("handover") == 0
    assert [e["action"] for e in events].count("pickup") == 1
    trail = await world.ok("admin", "GET", "/api/v1/audit", params={"entity": "scan_request"})
    entries = [e for e in trail if e["entity_id"] == pickup_key]
    assert entries, trail
    assert entries[0]["action"] == "idempotency_key_refused"
    assert entries[0]["new_value"]["why"] == "a different request"
    # The same key from someone else is refused as before, and audited too.
    stolen = await world.scan("courier2", "pickup", "USZ-APH", ship, key=pickup_key)
    assert stolen.status_code == 409
    trail = await world.ok("admin", "GET", "/api/v1/audit", params={"entity": "scan_request"})
    assert {e["new_value"]["why"] for e in trail if e["entity_id"] == pickup_key} == {
        "a different request",
        "another user",
    }


async def test_a_handover_to_a_courier_not_on_the_route_is_refused(client):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    root = await admin(client)
    # A courier bound only to USZ: neither this shipment's origin (USZ-APH) nor its destination (CTA).
    await make_user(client, root, "offroute", ["courier"], ["USZ"], password=PASSWORD)
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    body = refused(
        await world.scan("courier1", "handover", "USZ-APH", ship, handover_to="offroute"),
        422,
        "receiver_not_on_route",
    )
    assert "offroute" in body["detail"]
    assert ship in body["detail"]
    shipment = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}")
    assert shipment["status"] == "in_transit"
    # On the route: accepted.
    await world.scan_ok("courier1", "handover", "USZ-APH", ship, handover_to="courier2")
    _ = coi


async def test_a_bedside_mismatch_is_filed_in_both_cases(client, database_url):
    world = await build_world(client)
    coi, bag = await bag_at_bedside(world)
    other = await world.new_case()
    body = refused(
        await world.scan(
            "pharm",
            "infuse",
            "USZ",
            f"&/{other}",
            bag,
            signatures=_signatures(("pharm", "verified at bedside"), ("pharm2", "administered")),
        ),
        409,
        "coi_mismatch",
    )
    assert "STOP" in body["detail"]
    for case in (coi, other):
        last = (await _events(world, case))[-1]
        assert (last["action"], last["outcome"], last["refusal"]) == ("infuse", "refused", "coi_mismatch")
        alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": case})
        assert [a["severity"] for a in alerts if a["kind"] == "coi_mismatch"] == ["critical"], alerts
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bag}"))["status"] == "thawed"
    for case in (coi, other):
        assert (await world.ok("admin", "GET", f"/api/v1/cases/{case}/verify"))["ok"] is True
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM custody_events WHERE outcome = 'refused'") == 2
    finally:
        await conn.close()
