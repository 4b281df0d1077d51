"""Genealogy (issue 21, finding 6): a product bag is registered from its case's starting material received
at the manufacturing site; the starting material is then consumed, and the link is in the timeline and
the replayed record."""

from __future__ import annotations

import asyncpg

from tests.integration.helpers import assert_problem
from tests.integration.journey import (
    World,
    build_world,
    released_bag,
    starting_material_at_manufacturing,
)
from tests.integration.test_custody_refusals import _case_with_packed_shipment, refused


def _product(aph: list[str] | None) -> dict[str, object]:
    body: dict[str, object] = {"kind": "PRC", "product": "Autologous CAR-T", "site": "CTA"}
    if aph is not None:
        body["from_units"] = aph
    return body


async def _register(world: World, coi: str, aph: list[str] | None, who: str = "mfg") -> object:
    return await world.call(who, "POST", f"/api/v1/cases/{coi}/units", json=_product(aph))


async def test_a_product_is_not_registered_from_material_only_planned_for_shipment(client):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    body = assert_problem(await _register(world, coi, [aph]), 409, aph, f"planned for shipment {ship}")
    assert "not received at the manufacturing site" in body["detail"]
    # Nothing was registered and the starting material is as it was.
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    assert [u["kind"] for u in timeline["units"]] == ["APH"]
    assert timeline["units"][0]["status"] == "labelled"
    assert not [e for e in timeline["events"] if e["action"] in ("unit_registered", "consume")][1:]


async def test_a_product_names_its_own_case_s_received_starting_material(client):
    world = await build_world(client)
    coi, aph, _ship = await starting_material_at_manufacturing(world)
    other, other_aph, _ = await starting_material_at_manufacturing(world)
    assert_problem(await _register(world, coi, None), 422, "from_units")
    assert_problem(
        await _register(world, coi, [other_aph]), 409, other_aph, f"not starting material of case {coi}"
    )
    apheresis = {"kind": "APH", "product": "Apheresis", "site": "CTA", "from_units": [aph]}
    answer = await world.call("mfg", "POST", f"/api/v1/cases/{coi}/units", json=apheresis)
    assert_problem(answer, 422, "only a product bag")
    # Refused attempts leave the material as it was.
    assert (await world.ok("mfg", "GET", f"/api/v1/units/{aph}"))["status"] == "received"
    assert (await world.ok("mfg", "GET", f"/api/v1/units/{other_aph}"))["status"] == "received"
    _ = other


async def test_the_starting_material_is_consumed_and_the_link_is_recorded(client, database_url):
    world = await build_world(client)
    coi, aph, _ship = await starting_material_at_manufacturing(world)
    answer = await _register(world, coi, [aph])
    assert answer.status_code == 201, answer.text
    prc = answer.json()["id"]
    assert (await world.ok("mfg", "GET", f"/api/v1/units/{aph}"))["status"] == "consumed"

    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    assert timeline["genealogy"] == {prc: [aph]}
    registered = next(
        e for e in timeline["events"] if e["action"] == "unit_registered" and prc in e["unit_ids"]
    )
    assert registered["data"]["from_units"] == [aph]
    consumed = next(e for e in timeline["events"] if e["action"] == "consume")
    assert (consumed["unit_ids"], consumed["data"]["into"]) == ([aph], prc)
    assert consumed["seq"] == registered["seq"] + 1
    verdict = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/verify")
    assert verdict["ok"] is True, verdict

    # Consumed material takes no further custody step but disposal of what is left, and a scan of it is
    # an ordinary refusal, not a record mismatch (its record says consumed too).
    store = await world.scan("mfg", "store", "CTA", aph, storage_location="LN2-9")
    assert refused(store, 409, "out_of_order")["refusal"] != "record_mismatch"
    # A second bag of the same manufacture may name the same material.
    second = await _register(world, coi, [aph])
    assert second.status_code == 201, second.text
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    assert timeline["genealogy"] == {prc: [aph], second.json()["id"]: [aph]}
    assert len([e for e in timeline["events"] if e["action"] == "consume"]) == 1

    # A status set without its event is what verification catches: consumed in the record only.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE units SET status = 'received' WHERE id = $1", aph)
    finally:
        await conn.close()
    verdict = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/verify")
    assert verdict["ok"] is False
    assert {"object": "unit", "id": aph, "field": "status", "recorded": "consumed", "stored": "received"} in (
        verdict["state_mismatches"]
    )


async def test_the_journey_helper_s_bag_is_made_from_its_starting_material(client):
    world = await build_world(client)
    coi, prc = await released_bag(world)
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    assert timeline["genealogy"] == {prc: [f"{coi}-APH-01"]}
