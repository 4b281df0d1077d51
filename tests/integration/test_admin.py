"""User and site administration, input errors and the audit trail."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.helpers import admin, assert_problem, make_site, make_user


async def test_user_creation_validates_and_reports_each_field(client):
    root = await admin(client)
    await make_site(client, root, "USZ")
    bad = await client.post(
        "/api/v1/users",
        headers=root,
        json={"username": "x", "full_name": "X", "password": "short", "roles": ["pilot"], "sites": ["USZ"]},
    )
    body = assert_problem(bad, 400)
    assert {e["field"] for e in body["errors"]} >= {"username"}

    weak = await client.post(
        "/api/v1/users",
        headers=root,
        json={
            "username": "petra",
            "full_name": "Petra",
            "password": "short",
            "roles": ["pharmacist"],
            "sites": ["USZ"],
        },
    )
    assert_problem(weak, 422, "at least 10 characters")

    nowhere = await client.post(
        "/api/v1/users",
        headers=root,
        json={
            "username": "petra",
            "full_name": "Petra",
            "password": "long enough pw",
            "roles": ["pharmacist"],
            "sites": ["MARS"],
        },
    )
    assert_problem(nowhere, 422, "unknown site MARS")

    unknown_field = await client.post(
        "/api/v1/users",
        headers=root,
        json={
            "username": "petra",
            "full_name": "Petra",
            "password": "long enough",
            "roles": ["pharmacist"],
            "sites": ["USZ"],
            "is_admin": True,
        },
    )
    assert_problem(unknown_field, 400, "is_admin")


async def test_duplicate_username_conflicts_and_writes_nothing(client, database_url):
    root = await admin(client)
    await make_site(client, root, "USZ")
    await make_user(client, root, "petra", ["pharmacist"], ["USZ"])
    again = await client.post(
        "/api/v1/users",
        headers=root,
        json={
            "username": "petra",
            "full_name": "Other",
            "password": "long enough pw",
            "roles": ["courier"],
            "sites": ["USZ"],
        },
    )
    assert_problem(again, 409, "taken")
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE username = 'petra'") == 1
        assert await conn.fetchval("SELECT full_name FROM users WHERE username = 'petra'") == "Petra"
    finally:
        await conn.close()


async def test_site_validation(client):
    root = await admin(client)
    bad_zone = await client.post(
        "/api/v1/sites",
        headers=root,
        json={"code": "USZ", "name": "USZ", "kind": "hospital", "time_zone": "Mars/Base"},
    )
    assert_problem(bad_zone, 422, "time zone")
    bad_gln = await client.post(
        "/api/v1/sites",
        headers=root,
        json={
            "code": "USZ",
            "name": "USZ",
            "kind": "hospital",
            "time_zone": "Europe/Zurich",
            "gln": "7601234567891",
        },
    )
    body = assert_problem(bad_gln, 422)
    assert body["errors"][0]["field"] == "gln"
    await make_site(client, root, "USZ")
    assert_problem(await client.get("/api/v1/sites/NOPE", headers=root), 404, "NOPE")


async def test_audit_trail_records_old_and_new_values_and_is_append_only(client, database_url):
    root = await admin(client)
    await make_site(client, root, "USZ")
    await make_site(client, root, "CTA", kind="manufacturing")
    await make_user(client, root, "petra", ["pharmacist"], ["USZ"])
    changed = await client.patch(
        "/api/v1/users/petra", headers=root, json={"sites": ["USZ", "CTA"], "reason": "covers both sites now"}
    )
    assert changed.status_code == 200
    trail = await client.get("/api/v1/audit", headers=root, params={"entity": "user", "entity_id": "petra"})
    assert trail.status_code == 200
    update, create = trail.json()
    assert (update["action"], create["action"]) == ("update", "create")
    assert update["old_value"]["sites"] == ["USZ"]
    assert update["new_value"]["sites"] == ["CTA", "USZ"]
    assert update["reason"] == "covers both sites now"
    assert update["actor"] == "admin"
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("UPDATE audit_log SET reason = 'rewritten'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("DELETE FROM audit_log")
    finally:
        await conn.close()


async def test_unknown_route_and_wrong_method_are_problems(client):
    root = await admin(client)
    assert_problem(await client.get("/api/v1/nothing-here", headers=root), 404)
    response = await client.delete("/api/v1/sites", headers=root)
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_malformed_json_is_a_problem(client):
    response = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)
