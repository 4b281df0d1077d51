"""Token revocation beyond tests/integration/test_auth.py (sign-out, own password change, deactivation):
an administrator's password reset revokes every token of that user, and a revoked or foreign token
cannot be revived by signing out again."""

from __future__ import annotations

from tests.conftest import ADMIN_PASSWORD
from tests.integration.helpers import admin, assert_problem, login, make_site, make_user


async def test_an_administrators_password_reset_revokes_every_token_of_the_user(client):
    root = await admin(client)
    await make_site(client, root, "USZ")
    first = await make_user(client, root, "petra", ["pharmacist"], ["USZ"], password="first password!")
    second = await login(client, "petra", "first password!")
    reset = await client.post(
        "/api/v1/users/petra/password",
        headers=root,
        json={"new_password": "set by the admin", "reason": "forgotten"},
    )
    assert reset.status_code == 204, reset.text
    for headers in (first, second):
        assert_problem(await client.get("/api/v1/auth/me", headers=headers), 401, "revoked")
    assert (await client.get("/api/v1/auth/me", headers=root)).status_code == 200
    await login(client, "petra", "set by the admin")


async def test_a_revoked_token_stays_revoked(client):
    root = await admin(client)
    other = await login(client, "admin", ADMIN_PASSWORD)
    assert (await client.post("/api/v1/auth/logout", headers=other)).status_code == 204
    assert_problem(await client.post("/api/v1/auth/logout", headers=other), 401, "revoked")
    assert_problem(await client.get("/api/v1/auth/me", headers=other), 401, "revoked")
    # Signing one session out leaves the others alone.
    assert (await client.get("/api/v1/auth/me", headers=root)).status_code == 200
