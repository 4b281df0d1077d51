"""Electronic signatures are no password oracle: against the real API and PostgreSQL, an unknown user, a
wrong password, the right password of someone without the role and of someone not bound to the scan's
site all get the same answer; every refusal counts as a failed sign-in of that username (five lock it
for signatures and the sign-in form alike, even for the right password), survives the scan's
transaction being rolled back, and is in the audit trail without the password."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.integration.helpers import assert_problem, make_user
from tests.integration.journey import (
    PASSWORD,
    World,
    bag_at_bedside,
    build_world,
    starting_material_at_manufacturing,
)

WRONG = "a wrong guess at it"
MAX_FAILURES = 5  # CELLTRAIL_LOGIN_MAX_FAILURES's default, which the test settings keep


async def infuse(
    world: World, coi: str, prc: str, username: str, password: str, key: str | None = None
) -> Any:
    signatures = [
        {"username": "pharm", "password": PASSWORD, "meaning": "verified at bedside"},
        {"username": username, "password": password, "meaning": "administered"},
    ]
    return await world.scan("pharm", "infuse", "USZ", f"&/{coi}", prc, signatures=signatures, key=key)


async def failures(database_url: str, username: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM login_failures WHERE username = $1", username)
        return count
    finally:
        await conn.close()


async def test_every_kind_of_refused_signature_gets_the_same_answer(client):
    world = await build_world(client)
    # A pharmacist bound to the apheresis unit only: the right role, the wrong site.
    await make_user(
        client, world.headers["admin"], "pharm-aph", ["pharmacist"], ["USZ-APH"], password=PASSWORD
    )
    coi, prc = await bag_at_bedside(world)
    kinds = {
        "unknown user": ("nobody-here", PASSWORD),
        "wrong password": ("pharm2", WRONG),
        "right password, wrong role": ("coord", PASSWORD),
        "right password, wrong site": ("pharm-aph", PASSWORD),
    }
    answers = {}
    for kind, (username, password) in kinds.items():
        response = await infuse(world, coi, prc, username, password)
        body = assert_problem(response, 422)
        assert body["refusal"] == "signature_invalid", (kind, body)
        assert body["detail"] == "signature refused", (kind, body)
        assert username not in response.text, kind
        # Each refusal is a recorded event of its own; everything else is the same.
        assert isinstance(body.pop("event_id"), int)
        answers[kind] = (response.status_code, body)
    first = next(iter(answers.values()))
    assert all(answer == first for answer in answers.values()), answers
    # The bag was not infused, and the right signatures still work.
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{prc}"))["status"] == "thawed"
    done = await infuse(world, coi, prc, "pharm2", PASSWORD)
    assert done.status_code == 201, done.text


async def test_five_refused_signatures_lock_the_username_for_sign_in_too(client, database_url):
    world = await build_world(client)
    coi, prc = await bag_at_bedside(world)
    for _ in range(MAX_FAILURES):
        assert_problem(await infuse(world, coi, prc, "pharm2", WRONG), 422, "signature refused")
    assert await failures(database_url, "pharm2") == MAX_FAILURES
    # The sign-in form now refuses the right password...
    locked = await client.post("/api/v1/auth/login", json={"username": "pharm2", "password": PASSWORD})
    assert_problem(locked, 429, "too many failed sign-ins")
    # ... and so does a signature, without checking (or counting) the password.
    body = assert_problem(await infuse(world, coi, prc, "pharm2", PASSWORD), 422, "too many failed sign-ins")
    assert body["refusal"] == "signature_invalid"
    assert await failures(database_url, "pharm2") == MAX_FAILURES
    # An administrator's unlock lifts it for both.
    unlocked = await client.post(
        "/api/v1/users/pharm2/unlock", headers=world.headers["admin"], json={"reason": "called the help desk"}
    )
    assert unlocked.status_code == 200, unlocked.text
    assert (await infuse(world, coi, prc, "pharm2", PASSWORD)).status_code == 201


async def test_sign_in_failures_and_signature_failures_count_together(client, database_url):
    world = await build_world(client)
    coi, prc = await bag_at_bedside(world)
    for _ in range(MAX_FAILURES - 2):
        await client.post("/api/v1/auth/login", json={"username": "pharm2", "password": WRONG})
    for _ in range(2):
        assert_problem(await infuse(world, coi, prc, "pharm2", WRONG), 422, "signature refused")
    locked = await client.post("/api/v1/auth/login", json={"username": "pharm2", "password": PASSWORD})
    assert_problem(locked, 429)


async def test_a_refused_signature_stays_counted_when_the_scan_is_rolled_back(client, database_url):
    world = await build_world(client)
    coi, prc = await bag_at_bedside(world)
    key = str(uuid.uuid4())
    first = await infuse(world, coi, prc, "pharm2", WRONG, key=key)
    assert_problem(first, 422, "signature refused")
    # The same idempotency key again: this attempt is rolled back whole and answered with the first
    # answer, but its wrong password was still tried, so it still counts.
    again = await infuse(world, coi, prc, "pharm2", "another wrong guess", key=key)
    assert again.status_code == 422
    assert again.json()["event_id"] == first.json()["event_id"]
    assert await failures(database_url, "pharm2") == 2


async def test_every_refused_signature_is_audited_without_the_password(client):
    world = await build_world(client)
    await make_user(
        client, world.headers["admin"], "pharm-aph", ["pharmacist"], ["USZ-APH"], password=PASSWORD
    )
    coi, prc = await bag_at_bedside(world)
    await infuse(world, coi, prc, "pharm2", WRONG)
    await infuse(world, coi, prc, "coord", PASSWORD)
    await infuse(world, coi, prc, "pharm-aph", PASSWORD)
    await infuse(world, coi, prc, "ghost", WRONG)
    root = world.headers["admin"]
    why = {}
    for username in ("pharm2", "coord", "pharm-aph", "ghost"):
        response = await client.get(f"/api/v1/audit?entity=user&entity_id={username}", headers=root)
        assert response.status_code == 200, response.text
        assert WRONG not in response.text
        assert PASSWORD not in response.text
        entries = [e for e in response.json() if e["action"] == "signature_refused"]
        assert len(entries) == 1, (username, response.json())
        assert entries[0]["new_value"]["site"] == "USZ"
        assert entries[0]["new_value"]["meaning"] == "administered"
        why[username] = entries[0]["new_value"]["why"]
    assert why == {
        "pharm2": "wrong_password",
        "coord": "wrong_role",
        "pharm-aph": "wrong_site",
        "ghost": "unknown_user",
    }


async def test_a_wrong_password_at_qa_release_counts_too(client, database_url):
    world = await build_world(client)
    coi, _aph, _ship = await starting_material_at_manufacturing(world)
    prc = await world.unit("mfg", coi, "PRC", "CTA")
    await world.scan_ok("mfg", "label", "CTA", prc)
    wrong = await world.call("qa", "POST", f"/api/v1/units/{prc}/release", json={"password": WRONG})
    assert_problem(wrong, 422, "signature refused")
    assert await failures(database_url, "qa") == 1
