"""The audit trail behind its sites (issue 17): every entry names the sites it concerns; QA reads the
entries of their sites only, administrators all of them; entries of no site (global administration) are
for administrators; lockout client addresses and webhook targets are never shown to anyone else. The
finding: QA at one site read all 254 entries of every site, webhook targets and a lockout's address
included."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
import pytest

from backend.db.migrate import bundled_migrations, migrate
from backend.settings import Settings
from tests.integration.helpers import admin, assert_problem, make_site, make_user

A, B = "USZ", "CTA"
HOOK = "http://127.0.0.1:9/hook?token=s3cret-of-usz"
CLIENT = "testclient"  # the test client's address, as the sign-in throttle records it
MAX_FAILURES = 3
MAX_CLIENT_FAILURES = 8
PASSWORD = "correct horse battery"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(
        settings,
        login_max_failures=MAX_FAILURES,
        login_max_failures_per_client=MAX_CLIENT_FAILURES,
        # The webhook target is a loopback literal: no name to resolve in a test.
        webhook_allow="127.0.0.1",
    )


async def ok(client: Any, method: str, path: str, headers: dict[str, str], **body: Any) -> Any:
    response = await client.request(method, path, headers=headers, json=body)
    assert response.status_code < 300, (path, response.text)
    return response.json() if response.content else None


async def fail_sign_in(client: Any, username: str, times: int) -> None:
    for _ in range(times):
        response = await client.post("/api/v1/auth/login", json={"username": username, "password": "wrong"})
        assert response.status_code in (401, 429), response.text


async def two_sites_of_entries(client: Any) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Entries of site A, of site B and of no site; returns (people, an id per kind of A's entries)."""
    root = await admin(client)
    await make_site(client, root, A)
    await make_site(client, root, B, kind="manufacturing")
    who = {"admin": root}
    for name, roles, sites in [
        ("qa-a", ["qa"], [A]),
        ("qa-b", ["qa"], [B]),
        ("coord-a", ["coordinator"], [A]),
        ("pharm-a", ["pharmacist"], [A]),
        ("pharm-b", ["pharmacist"], [B]),
    ]:
        who[name] = await make_user(client, root, name, roles, sites)
    reason = {"reason": "issue 17 test"}
    await ok(client, "POST", "/api/v1/loggers", root, id="LGR-AUDITA", owner_site=A)
    await ok(client, "PATCH", "/api/v1/loggers/LGR-AUDITA", root, firmware="2.1", **reason)
    await ok(client, "POST", "/api/v1/loggers", root, id="LGR-AUDITB", owner_site=B)
    created = await ok(
        client, "POST", f"/api/v1/sites/{A}/subscriptions", who["coord-a"], channel="webhook", target=HOOK
    )
    subscription = str(created["subscription"]["id"])
    case = await ok(client, "POST", "/api/v1/cases", who["coord-a"], treatment_site=A, therapy="CAR-T")
    await ok(
        client,
        "POST",
        "/api/v1/profiles/usz-fresh/versions",
        who["qa-a"],
        name="USZ fresh",
        definition={"low_c": 2.0, "high_c": 8.0},
    )
    await ok(client, "PATCH", "/api/v1/users/pharm-b", root, full_name="Pharm B", **reason)
    # Lockouts: a user of site A (with the client's address in the entry), an unknown user name and,
    # last because it locks this client out of signing in, the client address itself.
    await fail_sign_in(client, "pharm-a", MAX_FAILURES)
    await fail_sign_in(client, "ghost", MAX_FAILURES)
    await fail_sign_in(client, "spray", MAX_CLIENT_FAILURES - 2 * MAX_FAILURES)
    of_a = {
        "site": A,
        "user": "pharm-a",
        "logger": "LGR-AUDITA",
        "alert_subscription": subscription,
        "case": case["coi"],
        "temperature_profile": "usz-fresh v1",
    }
    return who, of_a


def keys(entries: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(e["entity"], e["entity_id"]) for e in entries}


async def test_qa_reads_the_entries_of_their_sites_and_administrators_all(client):
    who, of_a = await two_sites_of_entries(client)
    trail = await client.get("/api/v1/audit", headers=who["admin"], params={"limit": 1000})
    everything = trail.json()
    # The administrator reads every entry, addresses and targets included.
    assert set(of_a.items()) <= keys(everything)
    assert {("user", "pharm-b"), ("logger", "LGR-AUDITB"), ("user", "ghost"), ("client", CLIENT)} <= keys(
        everything
    )
    lockouts = {e["entity_id"]: e for e in everything if e["action"] == "lockout"}
    assert lockouts["pharm-a"]["new_value"]["client"] == CLIENT
    assert (lockouts["pharm-a"]["sites"], lockouts["ghost"]["sites"], lockouts[CLIENT]["sites"]) == (
        [A],
        [],
        [],
    )
    hook = next(e for e in everything if e["entity"] == "alert_subscription")
    assert (hook["new_value"]["target"], hook["sites"]) == (HOOK, [A])
    assert next(e for e in everything if e["entity"] == "case")["sites"] == [A]

    # QA at B: not one entry of A, nothing of no site, no address, no target.
    seen_by_b = (await client.get("/api/v1/audit", headers=who["qa-b"], params={"limit": 1000})).json()
    assert seen_by_b, "B's own entries are readable by B's QA"
    assert all(B in e["sites"] for e in seen_by_b), seen_by_b
    assert not set(of_a.items()) & keys(seen_by_b)
    assert {("user", "pharm-b"), ("logger", "LGR-AUDITB"), ("site", B)} <= keys(seen_by_b)
    for entity, entity_id in of_a.items():
        asked = await client.get(
            "/api/v1/audit", headers=who["qa-b"], params={"entity": entity, "entity_id": entity_id}
        )
        assert asked.json() == [], (entity, entity_id)

    # QA at A: A's entries, with the client address and the webhook target hidden.
    response = await client.get("/api/v1/audit", headers=who["qa-a"], params={"limit": 1000})
    seen_by_a = response.json()
    assert set(of_a.items()) <= keys(seen_by_a)
    assert all(A in e["sites"] for e in seen_by_a)
    assert ("user", "pharm-b") not in keys(seen_by_a)
    for text in (CLIENT, HOOK, "s3cret-of-usz", "127.0.0.1", "ghost"):
        assert text not in response.text, text
    lockout = next(e for e in seen_by_a if e["action"] == "lockout")
    assert lockout["new_value"]["client"] == "(administrators only)"
    hidden_hook = next(e for e in seen_by_a if e["entity"] == "alert_subscription")
    assert hidden_hook["new_value"]["target"] == "(administrators only)"

    # The trail stays closed to everyone else.
    assert_problem(await client.get("/api/v1/audit", headers=who["pharm-a"]), 403, "needs one of the roles")


async def test_entries_written_before_the_migration_get_their_sites(postgres_url):
    """Migration 0011 derives the sites of the entries already written, and marks profile versions posted
    through the API before it (never reviewed) as pending."""
    name = "audit_sites_backfill"
    server = await asyncpg.connect(postgres_url)
    try:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await server.execute(f'CREATE DATABASE "{name}"')
    finally:
        await server.close()
    conn = await asyncpg.connect(postgres_url.rpartition("/")[0] + "/" + name)
    try:
        before, after = [], []
        for migration in bundled_migrations():
            (before if migration.version < 11 else after).append(migration)
        await migrate(conn, before)
        await conn.execute(
            """INSERT INTO sites (code, name, kind, time_zone) VALUES
                   ('USZ', 'A', 'hospital', 'UTC'), ('CTA', 'B', 'manufacturing', 'UTC');
               INSERT INTO users (username, full_name, password_hash) VALUES ('pharm-a', 'P', 'x');
               INSERT INTO user_sites SELECT id, 'USZ' FROM users WHERE username = 'pharm-a';
               INSERT INTO loggers (id, owner_site) VALUES ('LGR-OLD', 'CTA');
               INSERT INTO temperature_profiles (code, version, name, definition)
                   VALUES ('fresh', 2, 'hostile', '{"low_c": -50, "high_c": 60}');"""
        )
        await conn.execute(
            """INSERT INTO audit_log (actor_name, action, entity, entity_id, old_value, new_value) VALUES
                   ('system', 'lockout', 'user', 'pharm-a', NULL, '{"client": "192.0.2.1"}'),
                   ('system', 'lockout', 'client', '192.0.2.1', NULL, '{"client": "192.0.2.1"}'),
                   ('admin', 'update', 'user', 'moved', '{"sites": ["CTA"]}', '{"sites": []}'),
                   ('admin', 'create', 'site', 'USZ', NULL, NULL),
                   ('admin', 'update', 'logger', 'LGR-OLD', '{"owner_site": "USZ"}', '{"owner_site": "CTA"}'),
                   ('coord', 'create', 'temperature_profile', 'fresh v2', NULL, NULL)"""
        )
        await migrate(conn, after)
        rows = await conn.fetch("SELECT entity, entity_id, sites FROM audit_log ORDER BY id")
        assert [(r["entity_id"], r["sites"]) for r in rows] == [
            ("pharm-a", ["USZ"]),
            ("192.0.2.1", []),
            ("moved", ["CTA"]),
            ("USZ", ["USZ"]),
            ("LGR-OLD", ["CTA", "USZ"]),
            ("fresh v2", []),
        ]
        statuses = await conn.fetch("SELECT version, status FROM temperature_profiles WHERE code = 'fresh'")
        assert sorted((r["version"], r["status"]) for r in statuses) == [(1, "approved"), (2, "pending")]
        # The backfill over, the trail is append-only again.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE audit_log SET sites = '{CTA}'")
    finally:
        await conn.close()
        server = await asyncpg.connect(postgres_url)
        try:
            await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await server.close()
