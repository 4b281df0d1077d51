"""Property-based API fuzzing from the OpenAPI description (Schemathesis): every operation, valid and
invalid inputs, called as every role against a real server and a real PostgreSQL. Properties: no 5xx;
every error is an RFC 9457 problem+json body; a refused request writes nothing (custody refusals, which
are recorded on purpose, and sign-in failures, which are counted on purpose, excepted).

Bounded: a few examples per operation and role, so the whole file runs in about a minute on 2 cores."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from backend.app import create_app
from backend.domain.access import Role
from backend.settings import Settings
from tests.integration.helpers import make_site, make_user
from tests.integration.journey import build_world, starting_material_at_manufacturing

PASSWORD = "schemathesis password"
# Not fuzzed: the live stream never ends by itself, and signing out would revoke the role's token that
# the following examples use (both are covered by their own tests).
SKIPPED = {("GET", "/api/v1/stream"), ("POST", "/api/v1/auth/logout")}
EXAMPLES_ALLOWED = 4
EXAMPLES_NEGATIVE = 2
EXAMPLES_REAL = 4
EXAMPLES_REFUSED = 1
# Tables written on purpose by a refused request: sign-in failures are counted, custody refusals are
# recorded as events with an alert and an outbox row (README "Custody scans").
RECORDED_REFUSALS = {
    "login_failures",
    "login_lockouts",
    "custody_events",
    "orphan_refusals",
    "alerts",
    "alert_deliveries",
    "outbox",
    "audit_log",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """The real app under uvicorn on a free loopback port, in a thread with its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.port = _free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_config=None, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive(), "the server did not start"
            assert time.monotonic() < deadline, "the server did not start within a minute"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def server(settings: Settings) -> Iterator[Server]:
    # No periodic checks while fuzzing: they would write alerts between the before/after snapshots.
    quiet = msgspec.structs.replace(settings, housekeeping_seconds=3600.0)
    with Server(quiet) as running:
        yield running


def login(base: str, username: str, password: str) -> dict[str, str]:
    response = requests.post(
        f"{base}/api/v1/auth/login", json={"username": username, "password": password}, timeout=30
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def _world(base: str) -> tuple[dict[Role, dict[str, str]], dict[str, str]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        world = await build_world(client)
        coi, unit, shipment = await starting_material_at_manufacturing(world)
        root = world.headers["admin"]
        await make_site(client, root, "HQ-BRIDGE", kind="courier_depot")
        bridge = await make_user(client, root, "fuzz-bridge", ["bridge"], ["HQ-BRIDGE"], password=PASSWORD)
    headers = {
        Role.ADMIN: root,
        Role.COORDINATOR: world.headers["coord"],
        Role.PHARMACIST: world.headers["nurse"],
        Role.COURIER: world.headers["courier1"],
        Role.MANUFACTURING: world.headers["mfg"],
        Role.QA: world.headers["qa"],
        Role.BRIDGE: bridge,
    }
    known = {"coi": coi, "unit_id": unit, "shipment_id": shipment, "site": "CTA", "site_code": "CTA"}
    return headers, known


def people(base: str) -> tuple[dict[Role, dict[str, str]], dict[str, str]]:
    """A person per role, all bound to the sites of one real case, so fuzzing reaches real records."""
    return asyncio.run(_world(base))


class Snapshot:
    """Row counts of every table, to see whether a refused request wrote anything."""

    def __init__(self, database_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection[Any] = self.loop.run_until_complete(asyncpg.connect(database_url))

        names = self.loop.run_until_complete(
            self.conn.fetch(
                """SELECT table_name FROM information_schema.tables
                   WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"""
            )
        )
        # One statement counting every table (names from the catalogue, quoted as identifiers).
        self.query = " UNION ALL ".join(
            f"SELECT '{r['table_name']}' AS name, count(*) AS n FROM \"{r['table_name']}\"" for r in names
        )

    def counts(self) -> dict[str, int]:
        rows = self.loop.run_until_complete(self.conn.fetch(self.query))
        return {row["name"]: row["n"] for row in rows}

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def check_problem(status: int, content_type: str, content: bytes, where: str) -> None:
    text = content.decode(errors="replace")
    assert status < 500, f"{where}: {status} {text[:500]}"
    if status < 400:
        return
    assert content_type.startswith("application/problem+json"), (
        f"{where}: {status} is not problem+json ({content_type}): {text[:300]}"
    )
    body = msgspec.json.decode(content)
    assert body["status"] == status, where
    assert body["type"].startswith("urn:celltrail:problem:"), where
    assert body["title"], where
    assert body["detail"], where


def strategies(operation: Any, known: dict[str, str], allowed: bool) -> list[tuple[Any, int]]:
    """What to draw and how many: random inputs, inputs breaking the schema, and random inputs about
    the real records (path parameters naming the case, unit, shipment or site)."""
    if not allowed:
        return [(operation.as_strategy(GenerationMode.POSITIVE), EXAMPLES_REFUSED)]
    chosen = [
        (operation.as_strategy(GenerationMode.POSITIVE), EXAMPLES_ALLOWED),
        (operation.as_strategy(GenerationMode.NEGATIVE), EXAMPLES_NEGATIVE),
    ]
    names = [p.name for p in operation.path_parameters]
    if names and all(name in known for name in names):
        real = {name: known[name] for name in names}
        chosen.append((operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real), EXAMPLES_REAL))
    return chosen


def fuzz_operation(
    strategy: Any, base: str, who: dict[str, str], examples: int, snapshot: Snapshot, where: str
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        before = snapshot.counts()
        response = case.call(base_url=base, headers=who, timeout=60)
        content_type = (response.headers.get("content-type") or [""])[0]
        described = f"{where} {case.path_parameters} {case.query} {str(case.body)[:200]}"
        check_problem(response.status_code, content_type, response.content, described)
        if response.status_code >= 400 and b"refusal" not in response.content:
            changed = {
                t: (before.get(t), n)
                for t, n in snapshot.counts().items()
                if before.get(t) != n and t not in RECORDED_REFUSALS
            }
            assert changed == {}, f"{described}: refused with {response.status_code} but wrote {changed}"

    run()


@pytest.mark.slow
def test_every_operation_as_every_role_answers_without_5xx_and_with_problem_bodies(server, database_url):
    base = server.url
    headers, known = people(base)
    raw = requests.get(f"{base}/schema/openapi.json", headers=headers[Role.ADMIN], timeout=30)
    assert raw.status_code == 200
    schema = schemathesis.openapi.from_dict(raw.json())
    snapshot = Snapshot(database_url)
    operations = 0
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            method = operation.method.upper()
            if (method, operation.path) in SKIPPED:
                continue
            operations += 1
            for role, who in headers.items():
                probe = requests.request(method, base + operation.path, headers=who, timeout=30)
                allowed = not (probe.status_code == 403 and "needs one of the roles" in probe.text)
                for strategy, examples in strategies(operation, known, allowed):
                    where = f"{method} {operation.path} as {role}"
                    fuzz_operation(strategy, base, who, examples, snapshot, where)
    finally:
        snapshot.close()
    assert operations > 50
