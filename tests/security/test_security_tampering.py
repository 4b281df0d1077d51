"""Tampering with the records directly in PostgreSQL, and the audit trail of administrative changes.

Custody events, signatures, refusals, readings and the audit log refuse UPDATE and DELETE by trigger
(and TRUNCATE, readings excepted: see migration 0007); a superuser who disables the triggers and
rewrites a signature is caught by the chain verification. tests/integration/test_custody_journey.py
covers an edited or deleted custody event; test_admin.py the audit log's own triggers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.integration.helpers import admin, make_site, make_user
from tests.integration.journey import build_world, starting_material_at_manufacturing


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def refused(conn: asyncpg.Connection[Any], statement: str, *args: object) -> str:
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as raised:
        await conn.execute(statement, *args)
    return str(raised.value)


async def test_stored_readings_cannot_be_changed_or_deleted(client, db):
    root = await admin(client)
    registered = await client.post("/api/v1/loggers", headers=root, json={"id": "LGR-TAMPER1"})
    assert registered.status_code == 201, registered.text
    await db.execute(
        "INSERT INTO readings (logger_id, ts, temp_c) VALUES ('LGR-TAMPER1', now(), 4.5), "
        "('LGR-TAMPER1', now() - interval '1 minute', 5.0)"
    )
    message = await refused(db, "UPDATE readings SET temp_c = 4.0 WHERE temp_c > 4.9")
    # Readings are partitioned by month: the refusal names the partition that holds the row.
    assert re.search(r"UPDATE on readings(_y\d{4}m\d{2}|_default)? is not allowed", message), message
    assert "DELETE on readings" in await refused(db, "DELETE FROM readings WHERE temp_c > 4.9")
    assert await db.fetchval("SELECT count(*) FROM readings") == 2
    # A redelivered reading is still answered by ON CONFLICT DO NOTHING, not refused.
    await db.execute(
        "INSERT INTO readings (logger_id, ts, temp_c) SELECT logger_id, ts, 9 FROM readings "
        "ON CONFLICT (logger_id, ts) DO NOTHING"
    )
    assert await db.fetchval("SELECT max(temp_c) FROM readings") == 5.0


async def test_loggers_and_shipments_that_readings_refer_to_cannot_vanish(client, db):
    # Readings carry no foreign keys (migration 0008: the ingest statement checks the references); the
    # rows they refer to are kept instead.
    world = await build_world(client)
    await starting_material_at_manufacturing(world)
    shipment = await db.fetchval("SELECT id FROM shipments LIMIT 1")
    root = await admin(client)
    registered = await client.post("/api/v1/loggers", headers=root, json={"id": "LGR-TAMPER2"})
    assert registered.status_code == 201, registered.text
    for table, key in (("loggers", "LGR-TAMPER2"), ("shipments", shipment)):
        assert "deactivate instead" in await refused(db, f"DELETE FROM {table} WHERE id = $1", key)
        assert "UPDATE on" in await refused(db, f"UPDATE {table} SET id = id || 'X' WHERE id = $1", key)
        assert "TRUNCATE on" in await refused(db, f"TRUNCATE {table} CASCADE")
        assert await db.fetchval(f"SELECT count(*) FROM {table} WHERE id = $1", key) == 1
    # Other changes to a logger go on as before.
    await db.execute("UPDATE loggers SET active = false WHERE id = 'LGR-TAMPER2'")


async def test_the_custody_record_refuses_truncation_and_signature_edits(client, db):
    world = await build_world(client)
    await starting_material_at_manufacturing(world)  # ends with a signed receipt
    for table in ("custody_events", "signatures", "orphan_refusals", "audit_log"):
        assert "append-only" in await refused(db, f"TRUNCATE {table} CASCADE")
    assert "UPDATE on signatures" in await refused(db, "UPDATE signatures SET meaning = 'approved'")
    assert await db.fetchval("SELECT count(*) FROM signatures") >= 1


async def test_a_rewritten_signature_is_detected_by_verification(client, db):
    world = await build_world(client)
    coi, _, _ = await starting_material_at_manufacturing(world)
    assert (await world.ok("qa", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True
    # With the triggers out of the way (a superuser can), the signer's printed name is changed.
    await db.execute("ALTER TABLE signatures DISABLE TRIGGER signatures_append_only")
    try:
        await db.execute("UPDATE signatures SET printed_name = 'Somebody Else'")
    finally:
        await db.execute("ALTER TABLE signatures ENABLE TRIGGER signatures_append_only")
    verdict = await world.ok("qa", "GET", f"/api/v1/cases/{coi}/verify")
    assert verdict["ok"] is False
    assert verdict["first_break"] is not None


async def audit(client: Any, root: dict[str, str], entity: str, entity_id: str) -> list[tuple[str, str]]:
    response = await client.get(
        "/api/v1/audit", headers=root, params={"entity": entity, "entity_id": entity_id}
    )
    assert response.status_code == 200, response.text
    return sorted((e["action"], e["actor"]) for e in response.json())


async def test_every_administrative_change_is_in_the_audit_trail(client):
    root = await admin(client)
    await make_site(client, root, "USZ")
    coordinator = await make_user(client, root, "cora", ["coordinator"], ["USZ"])
    reason = {"reason": "audit trail check"}

    async def ok(method: str, path: str, who: dict[str, str], **body: Any) -> Any:
        response = await client.request(method, path, headers=who, json=body)
        assert response.status_code < 300, (path, response.text)
        return response.json() if response.content else None

    await ok("PATCH", "/api/v1/users/cora", root, full_name="Cora Coordinator", **reason)
    await ok("POST", "/api/v1/users/cora/password", root, new_password="reset by admin 1", **reason)
    await ok("POST", "/api/v1/users/cora/unlock", root, **reason)
    await ok("POST", "/api/v1/loggers", root, id="LGR-AUDIT1", owner_site="USZ")
    await ok("PATCH", "/api/v1/loggers/LGR-AUDIT1", root, firmware="2.1", **reason)
    await ok("POST", "/api/v1/loggers/LGR-AUDIT1/broker-password", root, **reason)
    coordinator = await make_user(client, root, "colin", ["coordinator"], ["USZ"])
    created = await ok(
        "POST", "/api/v1/sites/USZ/subscriptions", coordinator, channel="email", target="qa@example.org"
    )
    subscription = created["subscription"]
    await ok(
        "POST", f"/api/v1/sites/USZ/subscriptions/{subscription['id']}/deactivate", coordinator, **reason
    )
    profile = await ok("GET", "/api/v1/profiles/fresh", root)
    version = await ok(
        "POST",
        "/api/v1/profiles/fresh/versions",
        root,
        name=profile["name"],
        definition=profile["definition"],
        **reason,
    )
    await ok("PATCH", "/api/v1/users/colin", root, active=False, **reason)

    assert await audit(client, root, "site", "USZ") == [("create", "admin")]
    assert await audit(client, root, "user", "cora") == [
        ("create", "admin"),
        ("password_change", "admin"),
        ("unlock", "admin"),
        ("update", "admin"),
    ]
    assert await audit(client, root, "user", "colin") == [("create", "admin"), ("update", "admin")]
    assert await audit(client, root, "logger", "LGR-AUDIT1") == [
        ("broker_password", "admin"),
        ("create", "admin"),
        ("update", "admin"),
    ]
    assert await audit(client, root, "alert_subscription", str(subscription["id"])) == [
        ("create", "colin"),
        ("deactivate", "colin"),
    ]
    profile_id = f"fresh v{version['version']}"
    assert await audit(client, root, "temperature_profile", profile_id) == [("create", "admin")]
