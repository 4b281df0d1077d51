"""Organisations (docs/organisations.md): a courier company's users see and scan only the legs assigned
to their company, a client's users follow only the cases made for them (never the patient's identity, and
they act on nothing), and users of no organisation keep the site rule. Tried from the attacker's side:
users bound to the very sites the records concern, the wrong kind of organisation, a second naming."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.integration.helpers import make_user
from tests.integration.journey import PASSWORD, World, build_world, released_bag

ORGANISATIONS = {
    "USZ-ORG": "hospital",
    "CTA-ORG": "manufacturer",
    "SWISSCOURIER": "courier",
    "OTHERCOURIER": "courier",
    "PHARMA-A": "client",
    "PHARMA-B": "client",
}


async def _directory(world: World) -> None:
    for code, kind in ORGANISATIONS.items():
        await world.ok(
            "admin", "POST", "/api/v1/organisations", 201, json={"code": code, "name": code, "kind": kind}
        )
    for site, code in (("USZ", "USZ-ORG"), ("CTA", "CTA-ORG")):
        await world.ok("admin", "PUT", f"/api/v1/sites/{site}/organisation", json={"organisation": code})


async def _member(world: World, username: str, roles: list[str], sites: list[str], organisation: str) -> None:
    world.headers[username] = await make_user(
        world.client, world.headers["admin"], username, roles, sites, PASSWORD
    )
    await world.ok(
        "admin", "PUT", f"/api/v1/users/{username}/organisation", json={"organisation": organisation}
    )


async def _packed_leg(world: World, coi: str, prc: str) -> str:
    leg = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", leg, prc)
    return leg


def _assign(organisation: str | None) -> dict[str, Any]:
    return {"organisation": organisation, "reason": "carrier booked for this leg"}


async def test_the_directory_is_the_administrators(client: Any) -> None:
    world = await build_world(client)
    await _directory(world)
    listed = {o["code"]: o for o in await world.ok("admin", "GET", "/api/v1/organisations")}
    assert {c: o["kind"] for c, o in listed.items()} == ORGANISATIONS
    assert listed["USZ-ORG"]["sites"] == ["USZ"]
    assert listed["SWISSCOURIER"]["sites"] == []
    for who in ("coord", "mfg", "pharm"):
        assert (await world.call(who, "GET", "/api/v1/organisations")).status_code == 403
        body = {"code": "MINE", "name": "Mine", "kind": "client"}
        assert (await world.call(who, "POST", "/api/v1/organisations", json=body)).status_code == 403
        membership = {"organisation": "SWISSCOURIER"}
        answer = await world.call(who, "PUT", f"/api/v1/users/{who}/organisation", json=membership)
        assert answer.status_code == 403
    taken = await world.call(
        "admin", "POST", "/api/v1/organisations", json={"code": "PHARMA-A", "name": "X", "kind": "client"}
    )
    assert taken.status_code == 409
    bad_kind = await world.call(
        "admin", "POST", "/api/v1/organisations", json={"code": "X1", "name": "X", "kind": "bank"}
    )
    assert bad_kind.status_code == 400
    unknown = await world.call(
        "admin", "PUT", "/api/v1/sites/CRX/organisation", json={"organisation": "NOPE"}
    )
    assert unknown.status_code == 422
    assert (
        await world.call("admin", "PUT", "/api/v1/sites/NOPE/organisation", json={"organisation": None})
    ).status_code == 404
    audit = await world.ok("admin", "GET", "/api/v1/audit", params={"entity": "organisation"})
    assert {e["entity_id"] for e in audit if e["entity"] == "organisation"} >= set(ORGANISATIONS)


async def test_a_courier_company_sees_and_scans_only_its_legs(client: Any, database_url: str) -> None:
    world = await build_world(client)
    await _directory(world)
    coi, prc = await released_bag(world)
    other_coi, other_prc = await released_bag(world)
    ours, theirs = await _packed_leg(world, coi, prc), await _packed_leg(world, other_coi, other_prc)
    # Planners of the leg's sites hand it over; nobody may hand a leg to a client or to a pharmacist's say.
    assert (await world.ok("mfg", "PUT", f"/api/v1/shipments/{ours}/courier", json=_assign("SWISSCOURIER")))[
        "courier_organisation"
    ] == "SWISSCOURIER"
    await world.ok("coord", "PUT", f"/api/v1/shipments/{theirs}/courier", json=_assign("OTHERCOURIER"))
    wrong_kind = await world.call("mfg", "PUT", f"/api/v1/shipments/{ours}/courier", json=_assign("PHARMA-A"))
    assert wrong_kind.status_code == 422, wrong_kind.text
    assert (
        await world.call("pharm", "PUT", f"/api/v1/shipments/{ours}/courier", json=_assign(None))
    ).status_code == 403
    # A driver of the courier company, bound to every site both legs touch.
    await _member(world, "driver", ["courier"], ["CTA", "CRX", "USZ", "USZ-APH"], "SWISSCOURIER")
    listed = await world.ok("driver", "GET", "/api/v1/shipments")
    assert [s["id"] for s in listed] == [ours]
    assert (await world.ok("driver", "GET", f"/api/v1/shipments/{ours}"))["id"] == ours
    hidden = await world.call("driver", "GET", f"/api/v1/shipments/{theirs}")
    nowhere = await world.call("driver", "GET", "/api/v1/shipments/SHP-2026-999999")
    assert hidden.status_code == nowhere.status_code == 404
    assert hidden.json()["detail"].replace(theirs, "X") == nowhere.json()["detail"].replace(
        "SHP-2026-999999", "X"
    )
    for path in (f"/api/v1/cases/{coi}", f"/api/v1/cases/{coi}/timeline", f"/api/v1/units/{prc}"):
        assert (await world.call("driver", "GET", path)).status_code == 404, path
    assert await world.ok("driver", "GET", "/api/v1/cases") == []
    assert await world.ok("driver", "GET", "/api/v1/alerts") == []
    # The assigned leg is scanned; the other one is unknown to them, and its chain gets nothing.
    conn = await asyncpg.connect(database_url)
    try:
        chain = "SELECT count(*) FROM custody_events WHERE coi = $1"
        before = await conn.fetchval(chain, other_coi)
        await world.scan_ok("driver", "pickup", "CTA", ours)
        refused = await world.scan("driver", "pickup", "CTA", theirs)
        assert refused.status_code == 422, refused.text
        assert refused.json()["refusal"] == "unknown_item"
        assert await conn.fetchval(chain, other_coi) == before
        audited = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'assign_courier' AND entity_id = ANY($1)",
            [ours, theirs],
        )
        assert audited == 2
    finally:
        await conn.close()
    # A courier of no organisation keeps the site rule.
    await world.scan_ok("courier1", "pickup", "CTA", theirs)
    # Picked up, the leg stays with its company until its holder hands it over
    # (test_organisations_relations.py); before pick-up, taking it back hides it from the driver.
    taken = await world.call("coord", "PUT", f"/api/v1/shipments/{ours}/courier", json=_assign(None))
    assert taken.status_code == 409, taken.text
    assert (await world.ok("driver", "GET", f"/api/v1/shipments/{ours}"))["id"] == ours


async def test_a_client_follows_its_own_cases_without_patient_identity(client: Any) -> None:
    world = await build_world(client)
    await _directory(world)
    coi, prc = await released_bag(world)
    other = (
        await world.ok(
            "coord",
            "POST",
            "/api/v1/cases",
            201,
            json={"treatment_site": "USZ", "therapy": "CAR-T (autologous)", "patient_ref": "MRN-0777"},
        )
    )["coi"]
    await world.ok("mfg", "PUT", f"/api/v1/cases/{coi}/client", json={"organisation": "PHARMA-A"})
    await world.ok("coord", "PUT", f"/api/v1/cases/{other}/client", json={"organisation": "PHARMA-B"})
    again = await world.call("coord", "PUT", f"/api/v1/cases/{coi}/client", json={"organisation": "PHARMA-B"})
    assert again.status_code == 409, again.text
    wrong_kind = await world.call(
        "coord", "PUT", f"/api/v1/cases/{other}/client", json={"organisation": "SWISSCOURIER"}
    )
    assert wrong_kind.status_code in (409, 422), wrong_kind.text
    # The client's user is given every role and bound to the case's sites: none of that opens anything.
    await _member(
        world, "sponsor", ["coordinator", "pharmacist", "qa", "manufacturing"], ["USZ", "CTA"], "PHARMA-A"
    )
    assert [c["coi"] for c in await world.ok("sponsor", "GET", "/api/v1/cases")] == [coi]
    seen = await world.ok("sponsor", "GET", f"/api/v1/cases/{coi}")
    assert (seen["patient_ref"], seen["birth_year"]) == (None, None)
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{coi}"))["patient_ref"] == "MRN-0042"
    assert (await world.ok("sponsor", "GET", f"/api/v1/cases/{coi}/client"))[
        "client_organisation"
    ] == "PHARMA-A"
    record = await world.call("sponsor", "GET", f"/api/v1/cases/{coi}/record.json")
    assert record.status_code == 200
    assert "MRN-0042" not in record.text
    patient = await world.call(
        "sponsor", "GET", f"/api/v1/cases/{coi}/patient", params={"reason": "care-coordination"}
    )
    assert patient.status_code in (403, 404), patient.text
    for path in (
        f"/api/v1/cases/{other}",
        f"/api/v1/cases/{other}/timeline",
        f"/api/v1/cases/{other}/client",
    ):
        assert (await world.call("sponsor", "GET", path)).status_code == 404, path
    for path in ("/api/v1/shipments", "/api/v1/alerts", "/api/v1/loggers"):
        assert await world.ok("sponsor", "GET", path) == [], path
    # Read-only: no custody action, not even on their own product.
    before = await world.ok("qa", "GET", f"/api/v1/units/{prc}")
    hold = await world.call(
        "sponsor", "POST", f"/api/v1/units/{prc}/hold", json={"reason": "client says", "password": PASSWORD}
    )
    assert hold.status_code == 403, hold.text
    scan = await world.scan("sponsor", "store", "CTA", prc, storage_location="X")
    assert scan.status_code == 403, scan.text
    assert await world.ok("qa", "GET", f"/api/v1/units/{prc}") == before
