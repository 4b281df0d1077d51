"""Sign-in throttling and lockout, against the real API and PostgreSQL: repeated failures lock a username
(and a client address), the lock holds even for the right password until the window passes or an
administrator unlocks, every lockout is audited, and the count is shared by every backend worker."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.db.pool import create_pool
from backend.services import auth
from backend.settings import Settings
from tests.integration.helpers import admin, assert_problem, login, make_site, make_user

PASSWORD = "petra's right password"
WRONG = "not the password"
MAX_FAILURES = 5
LOCKOUT_MINUTES = 15
MAX_CLIENT_FAILURES = 8


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(
        settings,
        login_max_failures=MAX_FAILURES,
        login_lockout_minutes=LOCKOUT_MINUTES,
        login_max_failures_per_client=MAX_CLIENT_FAILURES,
    )


async def attempt(client: AsyncTestClient[Any], username: str, password: str) -> Any:
    return await client.post("/api/v1/auth/login", json={"username": username, "password": password})


async def with_petra(client: AsyncTestClient[Any]) -> dict[str, str]:
    root = await admin(client)
    await make_site(client, root, "USZ")
    await make_user(client, root, "petra", ["pharmacist"], ["USZ"], password=PASSWORD)
    return root


async def fail(client: AsyncTestClient[Any], username: str, times: int) -> None:
    for _ in range(times):
        assert_problem(await attempt(client, username, WRONG), 401, "username or password is wrong")


async def sql(database_url: str, query: str, *args: object) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def test_failures_lock_the_username_even_for_the_right_password(client, database_url):
    root = await with_petra(client)
    await fail(client, "petra", MAX_FAILURES)
    locked = await attempt(client, "Petra ", PASSWORD)  # same name however it is typed
    body = assert_problem(locked, 429, "too many failed sign-ins")
    assert body["type"] == "urn:celltrail:problem:too-many-requests"
    retry_after = int(locked.headers["retry-after"])
    assert 0 < retry_after <= LOCKOUT_MINUTES * 60
    # Attempts while locked are refused before the password is checked and do not prolong the lock.
    assert_problem(await attempt(client, "petra", WRONG), 429)
    rows = await sql(database_url, "SELECT count(*) AS n FROM login_failures WHERE username = 'petra'")
    assert rows[0]["n"] == MAX_FAILURES
    audit = await client.get("/api/v1/audit?entity=user&entity_id=petra", headers=root)
    lockouts = [e for e in audit.json() if e["action"] == "lockout"]
    assert len(lockouts) == 1
    assert lockouts[0]["new_value"]["failures"] == MAX_FAILURES
    assert lockouts[0]["new_value"]["client"] == "testclient"


async def test_the_lock_ends_when_the_window_passes(client, database_url):
    await with_petra(client)
    await fail(client, "petra", MAX_FAILURES)
    assert_problem(await attempt(client, "petra", PASSWORD), 429)
    # Let the window pass without waiting: move the lockout and the failures into the past.
    await sql(database_url, "UPDATE login_lockouts SET locked_until = now() - interval '1 second'")
    await sql(database_url, "UPDATE login_failures SET at = at - make_interval(mins => $1)", LOCKOUT_MINUTES)
    assert (await attempt(client, "petra", PASSWORD)).status_code == 200
    # A single new failure does not lock again: the old ones are outside the window.
    await fail(client, "petra", 1)
    assert (await attempt(client, "petra", PASSWORD)).status_code == 200


async def test_a_successful_sign_in_resets_the_count(client):
    await with_petra(client)
    await fail(client, "petra", MAX_FAILURES - 1)
    await login(client, "petra", PASSWORD)
    await fail(client, "petra", MAX_FAILURES - 1)
    assert (await attempt(client, "petra", PASSWORD)).status_code == 200
    await fail(client, "petra", MAX_FAILURES)
    assert_problem(await attempt(client, "petra", PASSWORD), 429)


async def test_unknown_usernames_are_throttled_like_real_ones(client):
    await with_petra(client)
    await fail(client, "ghost", MAX_FAILURES)
    assert_problem(await attempt(client, "ghost", WRONG), 429)


async def test_an_administrator_can_unlock_and_it_is_audited(client):
    root = await with_petra(client)
    courier = await make_user(client, root, "carlos", ["courier"], ["USZ"])
    await fail(client, "petra", MAX_FAILURES)
    assert_problem(await attempt(client, "petra", PASSWORD), 429)
    refused = await client.post("/api/v1/users/petra/unlock", headers=courier, json={})
    assert_problem(refused, 403, "admin")
    assert_problem(await client.post("/api/v1/users/nobody/unlock", headers=root, json={}), 404)
    unlocked = await client.post(
        "/api/v1/users/petra/unlock", headers=root, json={"reason": "called the help desk"}
    )
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json() == {"username": "petra", "lockouts_lifted": 1}
    assert (await attempt(client, "petra", PASSWORD)).status_code == 200
    audit = (await client.get("/api/v1/audit?entity=user&entity_id=petra", headers=root)).json()
    unlocks = [e for e in audit if e["action"] == "unlock"]
    assert [(e["actor"], e["reason"]) for e in unlocks] == [("admin", "called the help desk")]


async def test_one_client_address_is_throttled_across_usernames(client, database_url):
    await with_petra(client)
    for number in range(MAX_CLIENT_FAILURES):
        # A different name each time: no single username reaches its own limit.
        assert_problem(await attempt(client, f"spray{number}", WRONG), 401)
    assert_problem(await attempt(client, "petra", PASSWORD), 429, "too many failed sign-ins")
    # The same user from another address is not affected by this address's lockout.
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        issued = await auth.login(pool, "petra", PASSWORD, timedelta(minutes=5), client="192.0.2.7")
        assert issued.principal.username == "petra"
    finally:
        await pool.close()
    rows = await sql(database_url, "SELECT scope, subject FROM login_lockouts")
    assert [(r["scope"], r["subject"]) for r in rows] == [("client", "testclient")]


async def test_workers_share_the_count_and_concurrent_failures_lock_once(settings, client, database_url):
    await with_petra(client)
    # A second backend process on the same database: failures through either count together.
    async with AsyncTestClient(app=create_app(settings)) as other:
        await fail(client, "petra", 2)
        await fail(other, "petra", 2)
        answers = await asyncio.gather(*(attempt(c, "petra", WRONG) for c in (client, other) * 3))
        assert sorted(a.status_code for a in answers).count(401) >= 1
        assert {a.status_code for a in answers} <= {401, 429}
        assert_problem(await attempt(other, "petra", PASSWORD), 429)
    rows = await sql(database_url, "SELECT count(*) AS n FROM login_lockouts WHERE scope = 'username'")
    assert rows[0]["n"] == 1
