"""Service accounts authenticate with API keys, and the client address is the TCP peer's unless a
trusted proxy names it: against the real app and PostgreSQL, a key works without signing in, is listed
without its secret, is refused from the moment it is revoked, and keeps working while failed sign-ins
have locked its host's address; X-Forwarded-For is ignored from an untrusted peer and honoured from a
proxy in CELLTRAIL_TRUSTED_PROXIES."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, transport

from backend import cli
from backend.app import create_app
from backend.http.clients import resolve
from backend.settings import Settings, SettingsError, load_settings, parse_networks
from firmware_bridge.ingest_contract import CONTENT_TYPE, INGEST_PATH, IngestBatch, encode_batch
from tests.conftest import ADMIN_PASSWORD
from tests.integration.helpers import admin, assert_problem, make_site, make_user

MAX_CLIENT_FAILURES = 20  # CELLTRAIL_LOGIN_MAX_FAILURES_PER_CLIENT's default, kept by the test settings


class PeerTransport(transport.TestClientTransport):
    """The test client's transport, with a TCP peer address of our choosing."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.address = address

    def parse_request(self, request: Any) -> dict[str, Any]:
        scope = super().parse_request(request)
        scope["client"] = (self.address, 40123)
        return scope


@asynccontextmanager
async def peer(app: Litestar, address: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A test client (running the app's lifespan) whose TCP peer address is `address`."""
    client = AsyncTestClient(app=app)
    client._transport = PeerTransport(address, client=client, raise_server_exceptions=True)
    async with client:
        yield client


async def bridge_with_key(client: Any, root: dict[str, str], username: str = "bridge-1") -> tuple[str, int]:
    await make_user(client, root, username, ["bridge"], ["HQ"], password="bridge account password")
    created = await client.post(
        "/api/v1/api-keys", headers=root, json={"username": username, "name": "host-1"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith("ctk_")
    assert len(body["key"]) > 40
    assert body["hint"] == body["key"][:10]
    return body["key"], body["id"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def deliver(client: Any, key: str) -> Any:
    batch = IngestBatch(batch_id=str(uuid.uuid4()), bridge_id="test-bridge")
    return await client.post(
        INGEST_PATH, content=encode_batch(batch), headers={**bearer(key), "Content-Type": CONTENT_TYPE}
    )


async def attempt(client: Any, username: str, password: str, **headers: str) -> Any:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}, headers=headers
    )


async def test_a_key_authenticates_its_service_account_without_signing_in(client, database_url):
    root = await admin(client)
    key, key_id = await bridge_with_key(client, root)
    me = await client.get("/api/v1/auth/me", headers=bearer(key))
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "bridge-1"
    assert me.json()["roles"] == ["bridge"]
    assert (await deliver(client, key)).status_code == 200
    # The account's role decides the rest, as for a token.
    assert_problem(await client.get("/api/v1/users", headers=bearer(key)), 403, "needs one of the roles")
    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(key + "x")), 401, "API key")
    assert_problem(await client.get("/api/v1/auth/me", headers=bearer("ctk_made-up")), 401, "API key")
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT key_hash, last_used_at FROM api_keys WHERE id = $1", key_id)
        assert row["last_used_at"] is not None
        assert key.encode() not in bytes(row["key_hash"])
        assert len(row["key_hash"]) == 32  # a SHA-256 digest, not the key
        logins = await conn.fetchval(
            "SELECT count(*) FROM auth_tokens t JOIN users u ON u.id = t.user_id"
            " WHERE u.username = 'bridge-1'"
        )
        assert logins == 1  # make_user's sign-in only: the key needed none
    finally:
        await conn.close()


async def test_keys_are_listed_without_their_secret_and_revoked_at_once(client):
    root = await admin(client)
    key, key_id = await bridge_with_key(client, root)
    assert (await client.get("/api/v1/auth/me", headers=bearer(key))).status_code == 200
    listed = await client.get("/api/v1/api-keys", headers=root)
    assert listed.status_code == 200, listed.text
    assert key not in listed.text
    assert key[10:20] not in listed.text
    (entry,) = listed.json()
    assert entry["id"] == key_id
    assert entry["username"] == "bridge-1"
    assert entry["name"] == "host-1"
    assert entry["created_by"] == "admin"
    assert entry["last_used_at"] is not None
    assert entry["revoked_at"] is None
    assert entry["active"] is True
    assert "key" not in entry

    revoked = await client.post(
        f"/api/v1/api-keys/{key_id}/revoke", headers=root, json={"reason": "the host was decommissioned"}
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["active"] is False
    assert revoked.json()["revoked_by"] == "admin"
    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(key)), 401, "revoked")
    assert (await deliver(client, key)).status_code == 401
    again = await client.post(f"/api/v1/api-keys/{key_id}/revoke", headers=root, json={})
    assert again.status_code == 200
    assert_problem(await client.post("/api/v1/api-keys/999999/revoke", headers=root, json={}), 404)

    audit = await client.get(f"/api/v1/audit?entity=api_key&entity_id={key_id}", headers=root)
    assert key not in audit.text
    assert sorted(e["action"] for e in audit.json()) == ["create", "revoke"]


async def test_keys_are_for_service_accounts_only_and_admins_only(client):
    root = await admin(client)
    await make_site(client, root, "USZ")
    petra = await make_user(client, root, "petra", ["pharmacist"], ["USZ"])
    person = await client.post("/api/v1/api-keys", headers=root, json={"username": "petra", "name": "mine"})
    assert_problem(person, 409, "service accounts only")
    nobody = await client.post("/api/v1/api-keys", headers=root, json={"username": "nobody", "name": "x"})
    assert_problem(nobody, 404)
    await bridge_with_key(client, root)
    assert_problem(await client.get("/api/v1/api-keys", headers=petra), 403, "admin")
    made = await client.post("/api/v1/api-keys", headers=petra, json={"username": "bridge-1", "name": "x"})
    assert_problem(made, 403, "admin")


async def test_a_deactivated_account_s_key_is_refused(client):
    root = await admin(client)
    key, _ = await bridge_with_key(client, root)
    off = await client.patch(
        "/api/v1/users/bridge-1", headers=root, json={"active": False, "reason": "retired bridge"}
    )
    assert off.status_code == 200, off.text
    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(key)), 401, "deactivated")


async def test_failed_sign_ins_lock_the_host_but_not_the_bridge_s_key(app, database_url):
    async with peer(app, "127.0.0.1") as local:
        key, _ = await bridge_with_key(local, await admin(local))
        for number in range(MAX_CLIENT_FAILURES):
            refused = await attempt(local, f"guess-{number}", "not anybody's password")
            assert refused.status_code == 401, refused.text
        # The address is locked: even the administrator's right password is refused from it ...
        assert_problem(await attempt(local, "admin", ADMIN_PASSWORD), 429, "too many failed sign-ins")
        # ... but the bridge on the same host never signs in, so its readings keep flowing.
        for _ in range(3):
            assert (await deliver(local, key)).status_code == 200
        assert (await local.get("/api/v1/auth/me", headers=bearer(key))).status_code == 200
        # X-Forwarded-For from an untrusted peer is ignored: it cannot dodge the lock.
        forged = await attempt(local, "admin", ADMIN_PASSWORD, **{"X-Forwarded-For": "203.0.113.9"})
        assert_problem(forged, 429)
    conn = await asyncpg.connect(database_url)
    try:
        clients = await conn.fetch("SELECT DISTINCT client FROM login_failures")
        assert [r["client"] for r in clients] == ["127.0.0.1"]
    finally:
        await conn.close()


async def test_x_forwarded_for_is_honoured_from_a_trusted_proxy_only(settings: Settings, database_url):
    behind_proxy = create_app(msgspec.structs.replace(settings, trusted_proxies="10.0.0.0/8, 127.0.0.1"))
    async with peer(behind_proxy, "10.1.2.3") as proxy:
        for number in range(MAX_CLIENT_FAILURES):
            # A client forged the left entry; the proxy appended the address it saw.
            forwarded = {"X-Forwarded-For": f"198.51.100.{number}, 203.0.113.9"}
            assert (
                await attempt(proxy, f"guess-{number}", "not anybody's password", **forwarded)
            ).status_code == 401
        # That client is locked; another client behind the same proxy is not.
        assert_problem(
            await attempt(proxy, "admin", ADMIN_PASSWORD, **{"X-Forwarded-For": "203.0.113.9"}), 429
        )
        other = await attempt(proxy, "admin", ADMIN_PASSWORD, **{"X-Forwarded-For": "203.0.113.77"})
        assert other.status_code == 200, other.text
        # A chain of trusted proxies: the first untrusted address from the right is the client.
        chained = {"X-Forwarded-For": "203.0.113.9, 10.9.9.9"}
        assert_problem(await attempt(proxy, "admin", ADMIN_PASSWORD, **chained), 429)
    async with peer(behind_proxy, "192.0.2.50") as stranger:
        # Not a trusted proxy: its header is ignored and its own address counts.
        ignored = await attempt(stranger, "admin", ADMIN_PASSWORD, **{"X-Forwarded-For": "203.0.113.9"})
        assert ignored.status_code == 200, ignored.text
    conn = await asyncpg.connect(database_url)
    try:
        clients = await conn.fetch("SELECT DISTINCT client FROM login_failures")
        assert [r["client"] for r in clients] == ["203.0.113.9"]
    finally:
        await conn.close()


def test_the_client_address_resolution():
    trusted = parse_networks("10.0.0.0/8, 127.0.0.1, 2001:db8::/32")
    assert resolve("192.0.2.1", ["203.0.113.9"], trusted) == "192.0.2.1"
    assert resolve("192.0.2.1", ["203.0.113.9"], ()) == "192.0.2.1"
    assert resolve("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"
    assert resolve("127.0.0.1", ["203.0.113.9"], trusted) == "203.0.113.9"
    assert resolve("127.0.0.1", ["1.1.1.1, 203.0.113.9"], trusted) == "203.0.113.9"
    assert resolve("127.0.0.1", ["1.1.1.1", "203.0.113.9, 10.0.0.2"], trusted) == "203.0.113.9"
    assert resolve("127.0.0.1", ["203.0.113.9:5555"], trusted) == "203.0.113.9"
    assert resolve("127.0.0.1", ["[2001:db9::1]:443"], trusted) == "2001:db9::1"
    assert resolve("2001:db8::5", ["198.51.100.4"], trusted) == "198.51.100.4"
    assert resolve("::ffff:10.0.0.1", ["198.51.100.4"], trusted) == "198.51.100.4"
    # Only trusted proxies in the header: the left-most of them.
    assert resolve("127.0.0.1", ["10.0.0.7, 10.0.0.8"], trusted) == "10.0.0.7"
    # Garbage where a trusted proxy should have written an address: the last trustworthy one.
    assert resolve("127.0.0.1", ["203.0.113.9, not-an-address"], trusted) == "127.0.0.1"
    assert resolve("127.0.0.1", [], trusted) == "127.0.0.1"
    assert resolve("testclient", ["203.0.113.9"], trusted) == "testclient"
    assert resolve(None, ["203.0.113.9"], trusted) is None


def test_trusted_proxies_setting():
    assert load_settings({}).trusted_proxy_networks == ()
    settings = load_settings({"CELLTRAIL_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,::1"})
    assert [str(n) for n in settings.trusted_proxy_networks] == ["10.0.0.0/8", "192.168.1.7/32", "::1/128"]
    with pytest.raises(SettingsError, match="CELLTRAIL_TRUSTED_PROXIES"):
        load_settings({"CELLTRAIL_TRUSTED_PROXIES": "10.0.0.0/8, proxy.example.org"})


def test_celltrail_serve_leaves_forwarded_headers_to_celltrail(monkeypatch, settings):
    import uvicorn

    seen: dict[str, Any] = {}

    class Server:
        def __init__(self, config: Any) -> None:
            seen["config"] = config

        def run(self) -> None:
            pass

    monkeypatch.setattr(uvicorn, "Server", Server)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(run=kw))
    monkeypatch.setenv("CELLTRAIL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    for workers in (1, 2):
        args = argparse.Namespace(host=None, port=None, workers=workers)
        assert cli.cmd_serve(args) == 0
    # uvicorn would otherwise rewrite the peer from X-Forwarded-For (127.0.0.1 is trusted by default).
    assert seen["config"].proxy_headers is False
    assert seen["run"]["proxy_headers"] is False


def celltrail(*args: str, database_url: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CELLTRAIL_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_apikey_command(database_url):
    made = celltrail(
        "apikey", "create", "bridge-cli", "--name", "host-7", "--create-account", database_url=database_url
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()  # the key alone on standard output
    assert key.startswith("ctk_")
    assert "created the service account bridge-cli" in made.stdout + made.stderr
    assert "shown only now" in made.stderr
    listing = celltrail("apikey", "list", database_url=database_url)
    assert listing.returncode == 0, listing.stderr
    assert "bridge-cli" in listing.stdout
    assert "host-7" in listing.stdout
    assert key[:10] in listing.stdout
    assert key[10:] not in listing.stdout
    assert "active" in listing.stdout
    revoked = celltrail("apikey", "revoke", "1", database_url=database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in celltrail("apikey", "list", database_url=database_url).stdout
    person = celltrail(
        "user",
        "add",
        "petra",
        "--full-name",
        "Petra",
        "--role",
        "admin",
        "--site",
        "HQ",
        "--password-stdin",
        database_url=database_url,
        stdin="aaaaaaaaaaaa\n",
    )
    assert person.returncode == 1
    assert "repetitive" in person.stderr
    assert "Traceback" not in person.stderr
