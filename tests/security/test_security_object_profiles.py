"""Temperature profiles behind their site (issue 17): a profile belongs to a site (or, seeded by the
migrations, to the network); a new version is proposed by QA of the owner site and used by new shipments
only after a second QA person of that site approves it with an e-signature. The finding: another site's
coordinator posted `fresh` limits of -50..60 °C, and the next shipment anywhere took them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.integration.helpers import assert_problem, make_user
from tests.integration.journey import PASSWORD, World, build_world

OWNER = "CTA"  # the journey's manufacturing site: its QA person is "qa"
CODE = "cta-fresh"
FRESH = {"low_c": 2.0, "high_c": 8.0, "critical_low_c": 0.0, "critical_high_c": 15.0}
# The finding's version: limits no shipment of living cells survives.
HOSTILE = {"low_c": -50.0, "high_c": 60.0}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def world_with_stewards(client: Any) -> World:
    """The journey's world, plus a second QA person at the owner site, QA and a coordinator of another
    site (USZ only), and a second administrator."""
    world = await build_world(client)
    root = world.headers["admin"]
    for username, roles, sites in [
        ("qa2", ["qa"], [OWNER]),
        ("qa-usz", ["qa"], ["USZ"]),
        ("coord-usz", ["coordinator"], ["USZ"]),
        ("admin2", ["admin"], ["USZ"]),
    ]:
        world.headers[username] = await make_user(client, root, username, roles, sites, password=PASSWORD)
    return world


async def propose(world: World, who: str, code: str, definition: dict[str, float], **extra: Any) -> Any:
    return await world.call(
        who,
        "POST",
        f"/api/v1/profiles/{code}/versions",
        json={"name": f"{code} by {who}", "definition": definition, **extra},
    )


async def approve(world: World, who: str, code: str, version: int, password: str = PASSWORD) -> Any:
    return await world.call(
        who, "POST", f"/api/v1/profiles/{code}/versions/{version}/approve", json={"password": password}
    )


async def plan(world: World, profile: str) -> Any:
    """Plans a shipment of a fresh case's apheresis bag with `profile`; the raw response."""
    coi = await world.new_case()
    unit = await world.unit("nurse", coi, "APH", "USZ-APH")
    departure = datetime.now(UTC)
    return await world.call(
        "coord",
        "POST",
        "/api/v1/shipments",
        json={
            "coi": coi,
            "from_site": "USZ-APH",
            "to_site": OWNER,
            "container_id": "SHIPPER-7",
            "profile": profile,
            "planned_departure": departure.isoformat(),
            "planned_arrival": (departure + timedelta(hours=6)).isoformat(),
            "units": [unit],
            "seals": ["SEAL-1"],
        },
    )


async def planned_version(world: World, profile: str) -> tuple[str, str]:
    """(shipment id, "code vN") of a new shipment planned with `profile`."""
    response = await plan(world, profile)
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["profile"]


def same_body(hidden: Any, missing: Any, hidden_code: str, missing_code: str) -> None:
    """The answer about a profile the caller may not see is the answer about one that does not exist."""
    assert hidden.status_code == missing.status_code, (hidden.text, missing.text)
    assert hidden.text.replace(hidden_code, "X") == missing.text.replace(missing_code, "X")


async def test_the_findings_version_is_refused_to_a_coordinator_and_unused_while_pending(client, db):
    world = await world_with_stewards(client)
    # The finding, replayed: another site's coordinator posts -50..60 °C to the network profile.
    refused = await propose(world, "coord-usz", "fresh", HOSTILE)
    assert_problem(refused, 403, "needs one of the roles")
    # QA is not enough for a network profile either: administrators keep those.
    assert_problem(await propose(world, "qa-usz", "fresh", HOSTILE), 403, "network profile")
    assert (await db.fetchval("SELECT max(version) FROM temperature_profiles WHERE code = 'fresh'")) == 1

    # Even an administrator's version is pending, and the next shipment keeps to the approved one.
    pending = await propose(world, "admin", "fresh", HOSTILE, reason="replaying the finding")
    assert pending.status_code == 201, pending.text
    assert (pending.json()["version"], pending.json()["status"]) == (2, "pending")
    _, used = await planned_version(world, "fresh")
    assert used == "fresh v1"
    # The proposer cannot put it in force; a second administrator turns it down.
    assert_problem(
        await approve(world, "admin", "fresh", 2, "admin-password-for-tests"), 403, "second person"
    )
    turned_down = await world.call(
        "admin2",
        "POST",
        "/api/v1/profiles/fresh/versions/2/refuse",
        json={"reason": "-50..60 °C is no limit"},
    )
    assert turned_down.status_code == 201, turned_down.text
    assert turned_down.json()["status"] == "refused"
    assert_problem(await approve(world, "admin2", "fresh", 2), 409, "refused")
    _, used = await planned_version(world, "fresh")
    assert used == "fresh v1"
    current = await world.ok("courier1", "GET", "/api/v1/profiles/fresh")
    assert (current["version"], current["approved_version"], current["versions"]) == (1, 1, [1, 2])

    # The database keeps the rule too: a shipment row naming an unapproved version is refused.
    with pytest.raises(asyncpg.CheckViolationError, match="not approved"):
        await db.execute(
            "UPDATE shipments SET profile_version = 2 WHERE id = (SELECT min(id) FROM shipments)"
        )


async def test_another_sites_people_cannot_see_propose_or_approve_a_sites_profile(client):
    world = await world_with_stewards(client)
    created = await propose(world, "qa", CODE, FRESH, reason="our shipper")
    assert created.status_code == 201, created.text
    assert (created.json()["owner_site"], created.json()["status"]) == (OWNER, "pending")

    # QA of another site: the profile does not exist for them, in every answer.
    for path in (f"/api/v1/profiles/{CODE}", f"/api/v1/profiles/{CODE}/versions/1"):
        hidden = await world.call("qa-usz", "GET", path)
        missing = await world.call("qa-usz", "GET", path.replace(CODE, "no-such"))
        assert_problem(hidden, 404)
        same_body(hidden, missing, CODE, "no-such")
    listed = await world.ok("qa-usz", "GET", "/api/v1/profiles", params={"all_versions": "true"})
    assert CODE not in {p["code"] for p in listed}
    assert "fresh" in {p["code"] for p in listed}
    hidden = await propose(world, "qa-usz", CODE, HOSTILE)
    missing = await world.call("qa-usz", "GET", f"/api/v1/profiles/{CODE}")
    assert_problem(hidden, 404, f"no temperature profile {CODE}")
    assert hidden.json()["detail"] == missing.json()["detail"]
    same_body(
        await approve(world, "qa-usz", CODE, 1), await approve(world, "qa-usz", "no-such", 1), CODE, "no-such"
    )
    refuse = {"json": {"reason": "not ours, but refused"}}
    same_body(
        await world.call("qa-usz", "POST", f"/api/v1/profiles/{CODE}/versions/1/refuse", **refuse),
        await world.call("qa-usz", "POST", "/api/v1/profiles/no-such/versions/1/refuse", **refuse),
        CODE,
        "no-such",
    )
    # Another site's coordinator is turned away by role, as for any code at all.
    same_body(
        await propose(world, "coord-usz", CODE, HOSTILE),
        await propose(world, "coord-usz", "no-such", HOSTILE),
        CODE,
        "no-such",
    )
    same_body(
        await approve(world, "coord-usz", CODE, 1),
        await approve(world, "coord-usz", "no-such", 1),
        CODE,
        "no-such",
    )
    # A coordinator of the owner site sees the profile but no longer creates versions.
    assert (await world.ok("coord", "GET", f"/api/v1/profiles/{CODE}"))["status"] == "pending"
    assert_problem(await propose(world, "coord", CODE, HOSTILE), 403, "needs one of the roles")

    versions = await world.ok("qa", "GET", "/api/v1/profiles", params={"all_versions": "true"})
    assert [(p["version"], p["status"]) for p in versions if p["code"] == CODE] == [(1, "pending")]


async def test_a_version_is_used_only_after_a_second_qa_approves_and_planned_shipments_keep_theirs(
    client, db
):
    world = await world_with_stewards(client)
    assert (await propose(world, "qa", CODE, FRESH)).status_code == 201
    # Pending: no shipment can be planned with it yet.
    assert_problem(await plan(world, CODE), 422, "unknown temperature profile")
    # The proposer cannot approve their own version; a wrong password signs nothing.
    assert_problem(await approve(world, "qa", CODE, 1), 403, "second person")
    assert_problem(await approve(world, "qa2", CODE, 1, "not the password"), 422)
    assert (await world.ok("qa", "GET", f"/api/v1/profiles/{CODE}"))["status"] == "pending"

    first = await approve(world, "qa2", CODE, 1)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["status"], body["proposed_by"], body["decided_by"], body["approved_version"]) == (
        "approved",
        "qa",
        "qa2",
        1,
    )
    assert (body["signature"]["username"], body["signature"]["meaning"]) == ("qa2", "released")
    early, used = await planned_version(world, CODE)
    assert used == f"{CODE} v1"

    # The finding's limits, proposed at the owner site: pending, and the next shipment keeps v1.
    second = await propose(world, "qa2", CODE, HOSTILE, reason="wider limits")
    assert (second.json()["version"], second.json()["status"]) == (2, "pending")
    _, used = await planned_version(world, CODE)
    assert used == f"{CODE} v1"
    assert_problem(await approve(world, "qa2", CODE, 2), 403, "second person")

    approved = await approve(world, "qa", CODE, 2)
    assert approved.status_code == 201, approved.text
    assert_problem(await approve(world, "qa", CODE, 2), 409, "already approved")
    _, used = await planned_version(world, CODE)
    assert used == f"{CODE} v2"
    # The shipment planned before keeps the version (and the limits) it was planned with.
    kept = await world.ok("coord", "GET", f"/api/v1/shipments/{early}")
    assert kept["profile"] == f"{CODE} v1"
    assert kept["limits"]["high_c"] == 8.0

    # A decided version is a record: its content and its decision do not change, even in SQL.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute(
            "UPDATE temperature_profiles SET definition = '{\"high_c\": 60}' WHERE code = $1 AND version = 1",
            CODE,
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("DELETE FROM temperature_profiles WHERE code = $1", CODE)

    # Proposals and approvals are in the audit trail, as entries of the owner site.
    trail = await world.ok("admin", "GET", "/api/v1/audit", params={"entity": "temperature_profile"})
    assert [(e["action"], e["entity_id"], e["actor"], e["sites"]) for e in trail] == [
        ("approve", f"{CODE} v2", "qa", [OWNER]),
        ("create", f"{CODE} v2", "qa2", [OWNER]),
        ("approve", f"{CODE} v1", "qa2", [OWNER]),
        ("create", f"{CODE} v1", "qa", [OWNER]),
    ]
    assert trail[0]["new_value"]["signature"]["printed_name"] == "Qa"
    assert [
        e["action"]
        for e in await world.ok("qa", "GET", "/api/v1/audit", params={"entity": "temperature_profile"})
    ] == [
        "approve",
        "create",
        "approve",
        "create",
    ]
    assert await world.ok("qa-usz", "GET", "/api/v1/audit", params={"entity": "temperature_profile"}) == []


async def test_a_new_profile_is_owned_by_the_named_site_of_its_proposer(client):
    world = await world_with_stewards(client)
    # QA of one site only: that site owns it. A site the proposer is not QA of cannot be named.
    assert_problem(await propose(world, "qa-usz", "usz-crt", FRESH, site=OWNER), 403, f"QA of {OWNER}")
    created = await propose(world, "qa-usz", "usz-crt", FRESH)
    assert created.json()["owner_site"] == "USZ"
    # An existing profile keeps its owner.
    assert_problem(await propose(world, "qa-usz", "usz-crt", FRESH, site=OWNER), 422, "belongs to USZ")
    # An administrator's new profile belongs to the network unless a site is named.
    network = await propose(world, "admin", "net-crt", FRESH)
    assert (network.json()["owner_site"], network.json()["status"]) == (None, "pending")
    refused = await world.call(
        "qa-usz", "POST", "/api/v1/profiles/net-crt/versions/1/refuse", json={"reason": "not QA's call"}
    )
    assert_problem(refused, 403, "administrators")
