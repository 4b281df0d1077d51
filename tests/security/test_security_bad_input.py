"""Hand-made bad requests the schema-driven fuzzer does not produce: each answers a 4xx problem+json body
and changes nothing."""

from __future__ import annotations

from tests.integration.helpers import admin, assert_problem
from tests.integration.journey import build_world


async def test_unknown_paths_methods_and_broken_bodies_answer_problems(client):
    root = await admin(client)
    assert_problem(await client.get("/api/v1/no-such-thing", headers=root), 404)
    assert_problem(await client.delete("/api/v1/sites", headers=root), 405)
    broken = {**root, "content-type": "application/json"}
    assert_problem(await client.post("/api/v1/sites", headers=broken, content=b'{"code": '), 400)
    assert_problem(await client.post("/api/v1/sites", headers=broken, content=b"\xff\xfe\x00"), 400)
    assert_problem(await client.post("/api/v1/sites", headers=broken, content=b"[1, 2]"), 400)
    nested = b"[" * 10_000 + b"]" * 10_000
    assert_problem(await client.post("/api/v1/sites", headers=broken, content=nested), 400)
    sites = await client.get("/api/v1/sites", headers=root)
    assert [s["code"] for s in sites.json()] == ["HQ"]


async def test_ids_beyond_the_database_range_are_invalid_input_not_internal_errors(client):
    # Found by the schema fuzzer: an integer path id beyond bigint reached asyncpg and answered 500.
    world = await build_world(client)
    huge = 2**63
    for who, path in (
        ("pharm", f"/api/v1/handovers/{huge}/confirm"),
        ("coord", f"/api/v1/alerts/{huge}/acknowledge"),
        ("coord", f"/api/v1/events/{huge}/corrections"),
    ):
        response = await world.call(who, "POST", path, json={"reason": "fuzzed", "comment": "fuzzed"})
        assert response.status_code in (400, 422), (path, response.text)
        assert_problem(response, response.status_code)
    far = await world.call("coord", "GET", "/api/v1/alerts", params={"limit": str(huge)})
    assert far.status_code < 500, far.text
