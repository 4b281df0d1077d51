"""Sign-in, tokens, roles and sites against the real API and a real PostgreSQL."""

from __future__ import annotations

import asyncpg

from tests.integration.helpers import admin, assert_problem, login, make_site, make_user


async def test_login_returns_a_working_token(client):
    headers = await admin(client)
    me = await client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json() == {
        "username": "admin",
        "full_name": "Administrator",
        "roles": ["admin"],
        "sites": ["HQ"],
    }


async def test_wrong_password_is_refused_without_revealing_which_part(client):
    wrong_password = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": "nope-nope-1"}
    )
    unknown_user = await client.post(
        "/api/v1/auth/login", json={"username": "ghost", "password": "nope-nope-1"}
    )
    a = assert_problem(wrong_password, 401, "username or password is wrong")
    b = assert_problem(unknown_user, 401, "username or password is wrong")
    assert a["detail"] == b["detail"]


async def test_missing_and_malformed_tokens_are_refused(client):
    assert_problem(await client.get("/api/v1/auth/me"), 401, "sign in first")
    assert_problem(await client.get("/api/v1/auth/me", headers={"Authorization": "Basic abc"}), 401)
    assert_problem(
        await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer forged"}), 401, "not valid"
    )


async def test_expired_token_is_refused(client, database_url):
    headers = await admin(client)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE auth_tokens SET expires_at = now() - interval '1 second'")
    finally:
        await conn.close()
    assert_problem(await client.get("/api/v1/auth/me", headers=headers), 401, "expired")


async def test_logout_revokes_the_token(client):
    headers = await admin(client)
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert_problem(await client.get("/api/v1/auth/me", headers=headers), 401, "revoked")


async def test_password_change_revokes_every_token_and_needs_the_current_password(client):
    root = await admin(client)
    await make_site(client, root, "USZ")
    first = await make_user(client, root, "petra", ["pharmacist"], ["USZ"], password="first password!")
    second = await login(client, "petra", "first password!")
    refused = await client.post(
        "/api/v1/auth/password",
        headers=first,
        json={"current_password": "wrong password", "new_password": "second password!"},
    )
    assert_problem(refused, 401, "current password is wrong")
    changed = await client.post(
        "/api/v1/auth/password",
        headers=first,
        json={"current_password": "first password!", "new_password": "second password!"},
    )
    assert changed.status_code == 204
    for headers in (first, second):
        assert_problem(await client.get("/api/v1/auth/me", headers=headers), 401, "revoked")
    await login(client, "petra", "second password!")


async def test_wrong_role_is_refused(client):
    root = await admin(client)
    await make_site(client, root, "USZ")
    courier = await make_user(client, root, "carlos", ["courier"], ["USZ"])
    body = assert_problem(await client.get("/api/v1/users", headers=courier), 403, "admin")
    assert "courier" in body["detail"]


async def test_wrong_site_is_refused_and_own_site_allowed(client):
    root = await admin(client)
    await make_site(client, root, "USZ")
    await make_site(client, root, "CTA", kind="manufacturing")
    coordinator = await make_user(client, root, "chris", ["coordinator"], ["USZ"])
    own = await client.get("/api/v1/sites/USZ/users", headers=coordinator)
    assert own.status_code == 200
    assert [u["username"] for u in own.json()] == ["chris"]
    assert_problem(
        await client.get("/api/v1/sites/CTA/users", headers=coordinator), 403, "not assigned to site CTA"
    )
    # Admins are not bound to sites.
    assert (await client.get("/api/v1/sites/CTA/users", headers=root)).status_code == 200


async def test_deactivated_user_loses_access_at_once(client):
    root = await admin(client)
    await make_site(client, root, "USZ")
    courier = await make_user(client, root, "carlos", ["courier"], ["USZ"])
    response = await client.patch(
        "/api/v1/users/carlos", headers=root, json={"active": False, "reason": "left the company"}
    )
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert_problem(await client.get("/api/v1/auth/me", headers=courier), 401)
    refused = await client.post(
        "/api/v1/auth/login", json={"username": "carlos", "password": "correct horse battery"}
    )
    assert_problem(refused, 401, "deactivated")


async def test_passwords_are_stored_as_argon2_hashes(client, database_url):
    root = await admin(client)
    await make_site(client, root, "USZ")
    await make_user(client, root, "petra", ["pharmacist"], ["USZ"], password="plain text secret")
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE username = 'petra'")
        token_rows = await conn.fetch("SELECT token_hash FROM auth_tokens")
    finally:
        await conn.close()
    assert stored.startswith("$argon2id$")
    assert "plain text secret" not in stored
    assert all(len(row["token_hash"]) == 32 for row in token_rows)
