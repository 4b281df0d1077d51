"""Organisations (docs/organisations.md), the relations beyond the first ones: a courier company and a
client named when the leg or the case is created; the courier assignment as a custody event that follows
the goods once they are picked up; a courier company's alerts; and a manufacturer's "made by" relation
across its sites. Tried from the attacker's side too: the wrong kind of organisation, the wrong role, a
re-assignment behind the holder's back, another company's alert, another manufacturer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from backend.db.pool import create_pool
from backend.db.repo import alerts, outbox
from backend.domain.access import OrganisationKind, Principal, Role
from backend.domain.errors import NotFound
from backend.services import objects
from tests.integration.helpers import make_site, make_user
from tests.integration.journey import PASSWORD, World, build_world, released_bag
from tests.integration.test_organisations import _assign, _directory, _member, _packed_leg

COURIER_ASSIGNED = "courier_assigned"


def _plan(coi: str, prc: str, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "coi": coi,
        "from_site": "CTA",
        "to_site": "USZ",
        "container_id": "SHIPPER-9",
        "profile": "cryo",
        "planned_departure": now.isoformat(),
        "planned_arrival": (now + timedelta(hours=6)).isoformat(),
        "units": [prc],
        **extra,
    }


async def _events(world: World, coi: str, action: str) -> list[dict[str, Any]]:
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    return [e for e in timeline["events"] if e["action"] == action]


async def test_courier_and_client_are_named_at_creation(client: Any, database_url: str) -> None:
    world = await build_world(client)
    await _directory(world)
    coi, prc = await released_bag(world)
    await _member(world, "driver", ["courier"], ["CTA", "CRX", "USZ"], "SWISSCOURIER")
    shipments_of = "SELECT count(*) FROM shipments WHERE coi = $1"
    conn = await asyncpg.connect(database_url)
    try:
        before = await conn.fetchval(shipments_of, coi)
        # The wrong kind, an unknown code, a role that may not name a carrier: refused, nothing planned.
        for body, who, status in (
            (_plan(coi, prc, courier_organisation="PHARMA-A"), "mfg", 422),
            (_plan(coi, prc, courier_organisation="NOWHERE-CO"), "mfg", 422),
            (_plan(coi, prc, courier_organisation="SWISSCOURIER"), "pharm", 403),
        ):
            refused = await world.call(who, "POST", "/api/v1/shipments", json=body)
            assert refused.status_code == status, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["detail"]
        assert await conn.fetchval(shipments_of, coi) == before
        leg = (
            await world.ok(
                "mfg",
                "POST",
                "/api/v1/shipments",
                201,
                json=_plan(coi, prc, courier_organisation="SWISSCOURIER"),
            )
        )["id"]
        # The same record as the route's: the audit entry and the custody event.
        audited = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'assign_courier' AND entity_id = $1", leg
        )
        assert audited == 1
    finally:
        await conn.close()
    assert (await world.ok("driver", "GET", f"/api/v1/shipments/{leg}"))["id"] == leg
    [event] = await _events(world, coi, COURIER_ASSIGNED)
    assert event["shipment_id"] == leg
    assert event["data"]["organisation"] == "SWISSCOURIER"
    # Not picked up yet: taken back from the company, the leg is gone for its driver.
    await world.ok("coord", "PUT", f"/api/v1/shipments/{leg}/courier", json=_assign(None))
    assert (await world.call("driver", "GET", f"/api/v1/shipments/{leg}")).status_code == 404

    case = {"treatment_site": "USZ", "therapy": "CAR-T (autologous)", "patient_ref": "MRN-0900"}
    for organisation in ("SWISSCOURIER", "NOWHERE-CO"):
        wrong = await world.call(
            "coord", "POST", "/api/v1/cases", json=case | {"client_organisation": organisation}
        )
        assert wrong.status_code == 422, wrong.text
        assert wrong.headers["content-type"].startswith("application/problem+json")
    assert "MRN-0900" not in str(await world.ok("coord", "GET", "/api/v1/cases"))
    made = await world.ok(
        "coord", "POST", "/api/v1/cases", 201, json=case | {"client_organisation": "PHARMA-A"}
    )
    await _member(world, "sponsor", ["coordinator"], ["USZ"], "PHARMA-A")
    assert [c["coi"] for c in await world.ok("sponsor", "GET", "/api/v1/cases")] == [made["coi"]]
    assert (await world.ok("sponsor", "GET", f"/api/v1/cases/{made['coi']}"))["patient_ref"] is None
    again = await world.call(
        "coord", "PUT", f"/api/v1/cases/{made['coi']}/client", json={"organisation": "PHARMA-B"}
    )
    assert again.status_code == 409, again.text


async def test_the_courier_assignment_is_custody_and_follows_the_goods(client: Any) -> None:
    world = await build_world(client)
    await _directory(world)
    coi, prc = await released_bag(world)
    leg = await _packed_leg(world, coi, prc)
    await world.ok("mfg", "PUT", f"/api/v1/shipments/{leg}/courier", json=_assign("SWISSCOURIER"))
    # Naming the same company again changes nothing and records nothing.
    await world.ok("mfg", "PUT", f"/api/v1/shipments/{leg}/courier", json=_assign("SWISSCOURIER"))
    [event] = await _events(world, coi, COURIER_ASSIGNED)
    assert event["data"] == {
        "organisation": "SWISSCOURIER",
        "before": None,
        "reason": _assign(None)["reason"],
    }
    assert event["site"] == "CTA"
    assert event["shipment_id"] == leg
    await _member(world, "driver", ["courier"], ["CTA", "CRX", "USZ"], "SWISSCOURIER")
    await _member(world, "driver2", ["courier"], ["CRX", "USZ"], "OTHERCOURIER")
    await world.scan_ok("driver", "pickup", "CTA", leg)
    # Picked up: the planner cannot move the leg to another company behind its holder's back.
    behind = await world.call(
        "coord", "PUT", f"/api/v1/shipments/{leg}/courier", json=_assign("OTHERCOURIER")
    )
    assert behind.status_code == 409, behind.text
    assert behind.headers["content-type"].startswith("application/problem+json")
    assert "hands it over" in behind.json()["detail"]
    taken_back = await world.call("coord", "PUT", f"/api/v1/shipments/{leg}/courier", json=_assign(None))
    assert taken_back.status_code == 409, taken_back.text
    # The holder hands the goods to the other company's driver: now the carrier changes with them.
    await world.scan_ok("driver", "handover", "CRX", leg, handover_to="driver2")
    pending = await world.ok("driver", "GET", f"/api/v1/shipments/{leg}")
    assert pending["pending_handover_to"] == "driver2"
    await world.ok("coord", "PUT", f"/api/v1/shipments/{leg}/courier", json=_assign("OTHERCOURIER"))
    await world.ok("driver2", "POST", f"/api/v1/handovers/{pending['pending_handover']}/confirm", 201)
    assert (await world.ok("driver2", "GET", f"/api/v1/shipments/{leg}"))["holder"]
    assert (await world.call("driver", "GET", f"/api/v1/shipments/{leg}")).status_code == 404
    steps = await _events(world, coi, COURIER_ASSIGNED)
    assert [s["data"]["organisation"] for s in steps] == ["SWISSCOURIER", "OTHERCOURIER"]
    assert steps[1]["data"]["before"] == "SWISSCOURIER"
    # A custody event like the others: the chain verifies and the case record shows it.
    assert (await world.ok("qa", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True
    record = await world.ok("qa", "GET", f"/api/v1/cases/{coi}/record.json")
    assert COURIER_ASSIGNED in str(record)


async def _alert_on(conn: Any, leg: str, coi: str, title: str) -> int:
    alert_id = await alerts.open_alert(
        conn,
        kind="temperature_high",
        severity="critical",
        title=title,
        detail=f"{title}: above the profile's limit",
        condition_key=f"test:{leg}",
        sites=["CTA", "USZ"],
        started_at=datetime.now(UTC),
        coi=coi,
        shipment_id=leg,
    )
    assert alert_id is not None
    await outbox.publish(conn, "alert", ["CTA", "USZ"], coi, {"id": alert_id, "shipment_id": leg})
    return alert_id


async def test_a_courier_company_sees_the_alerts_of_its_legs_only(client: Any, database_url: str) -> None:
    world = await build_world(client)
    await _directory(world)
    coi, prc = await released_bag(world)
    other_coi, other_prc = await released_bag(world)
    ours, theirs = await _packed_leg(world, coi, prc), await _packed_leg(world, other_coi, other_prc)
    await world.ok("mfg", "PUT", f"/api/v1/shipments/{ours}/courier", json=_assign("SWISSCOURIER"))
    await world.ok("mfg", "PUT", f"/api/v1/shipments/{theirs}/courier", json=_assign("OTHERCOURIER"))
    await _member(world, "driver", ["courier"], ["CTA", "CRX", "USZ"], "SWISSCOURIER")
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await _courier_alerts(world, conn, coi, ours, other_coi, theirs)
    finally:
        await pool.close()


async def _courier_alerts(world: World, conn: Any, coi: str, ours: str, other_coi: str, theirs: str) -> None:
    """Their leg's alert in the list, on the live stream and by its id; the other company's nowhere."""
    mark = await outbox.latest_id(conn)
    mine = await _alert_on(conn, ours, coi, "Too warm on our leg")
    other = await _alert_on(conn, theirs, other_coi, "Too warm on their leg")
    assert [a["id"] for a in await world.ok("driver", "GET", "/api/v1/alerts")] == [mine]
    assert await world.ok("driver", "GET", "/api/v1/alerts", params={"shipment_id": theirs}) == []
    assert await world.ok("driver", "GET", "/api/v1/alerts", params={"coi": other_coi}) == []
    # The live stream: the notices of their leg's alert, not the other's, and no other notice.
    streamed = await outbox.after(conn, mark, [], courier="SWISSCOURIER")
    assert [(n.kind, n.payload["id"]) for n in streamed] == [("alert", mine)]
    assert await outbox.after(conn, mark, [], courier=None) == []
    # One alert by its id (the object gate): theirs is as unknown as one that does not exist.
    principal = Principal(
        user_id=await conn.fetchval("SELECT id FROM users WHERE username = 'driver'"),
        username="driver",
        full_name="driver",
        roles=frozenset({Role.COURIER}),
        sites=frozenset({"CTA", "CRX", "USZ"}),
        organisation="SWISSCOURIER",
        organisation_kind=OrganisationKind.COURIER,
    )
    assert (await objects.alert(conn, principal, mine)).id == mine
    for alert_id, lock in ((other, False), (mine, True), (999_999, False)):
        try:
            await objects.alert(conn, principal, alert_id, lock=lock)
        except NotFound:
            continue
        raise AssertionError(f"alert {alert_id} (acting: {lock}) was let through")
    # Acknowledging is for the roles docs/alerts.md names; a courier carries, the sites' people decide.
    ack = await world.call("driver", "POST", f"/api/v1/alerts/{mine}/acknowledge", json={"comment": "seen"})
    assert ack.status_code == 403, ack.text
    await world.ok("coord", "POST", f"/api/v1/alerts/{mine}/acknowledge", 201, json={"comment": "seen"})


async def test_a_manufacturer_sees_the_cases_made_at_any_of_its_sites(client: Any) -> None:
    world = await build_world(client)
    await _directory(world)
    root = world.headers["admin"]
    # CTA-ORG runs a second manufacturing site; HELVETIC is another manufacturer.
    await make_site(client, root, "CTA2", kind="manufacturing")
    await make_site(client, root, "HMO", kind="manufacturing")
    await world.ok(
        "admin",
        "POST",
        "/api/v1/organisations",
        201,
        json={"code": "HELVETIC", "name": "H", "kind": "manufacturer"},
    )
    await world.ok("admin", "PUT", "/api/v1/sites/CTA2/organisation", json={"organisation": "CTA-ORG"})
    await world.ok("admin", "PUT", "/api/v1/sites/HMO/organisation", json={"organisation": "HELVETIC"})
    coi, prc = await released_bag(world)  # made at CTA
    await _member(world, "maker2", ["manufacturing"], ["CTA2"], "CTA-ORG")
    await _member(world, "qa2", ["qa"], ["CTA2"], "CTA-ORG")
    seen = await world.ok("maker2", "GET", f"/api/v1/cases/{coi}")
    assert (seen["patient_ref"], seen["birth_year"]) == (None, None)
    assert coi in [c["coi"] for c in await world.ok("qa2", "GET", "/api/v1/cases")]
    assert (await world.ok("qa2", "GET", f"/api/v1/units/{prc}"))["id"] == prc
    record = await world.call("qa2", "GET", f"/api/v1/cases/{coi}/record.json")
    assert record.status_code == 200
    assert "MRN-0042" not in record.text
    patient = await world.call(
        "maker2", "GET", f"/api/v1/cases/{coi}/patient", params={"reason": "care-coordination"}
    )
    assert patient.status_code in (403, 404), patient.text
    # Not a maker's role, not of the organisation, another manufacturer: the site rule, and nothing.
    await _member(world, "pharm2x", ["pharmacist"], ["CTA2"], "CTA-ORG")
    await _member(world, "helvetic", ["manufacturing", "qa"], ["HMO"], "HELVETIC")
    world.headers["loose"] = await make_user(
        client, root, "loose", ["manufacturing", "qa"], ["CTA2"], PASSWORD
    )
    for who in ("pharm2x", "helvetic", "loose"):
        assert (await world.call(who, "GET", f"/api/v1/cases/{coi}")).status_code == 404, who
        assert (await world.call(who, "GET", f"/api/v1/units/{prc}")).status_code == 404, who
        assert coi not in str(await world.ok(who, "GET", "/api/v1/cases")), who
    # Seeing is not acting: the steps at CTA are still for those bound to CTA.
    hold = await world.call(
        "qa2", "POST", f"/api/v1/units/{prc}/hold", json={"reason": "from CTA2", "password": "x"}
    )
    assert hold.status_code in (403, 422), hold.text
    assert (await world.ok("qa", "GET", f"/api/v1/units/{prc}"))["quarantined"] is False
