"""The smaller findings of the security review (issue 17), each against the real app and PostgreSQL:
undecodable bodies, same-site legs, webhook targets on the server's own network and what the delivery
log shows of their answers, oversized fields, what /healthz tells a stranger, HSTS, and backup modes."""

from __future__ import annotations

import stat
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.backup import backup
from backend.db.pool import create_pool
from backend.services import alerting, notify
from backend.settings import Settings
from tests.integration.helpers import admin, assert_problem, make_site, make_user
from tests.integration.journey import build_world, starting_material_at_manufacturing

JSON = {"content-type": "application/json"}
INVALID_UTF8 = (
    b'{"username": "\xff\xfe", "password": "x"}',
    b'{"username": "a\xc3", "password": "b"}',  # a sequence cut short
    b'{"username": "\xed\xa0\x80", "password": "b"}',  # an encoded surrogate
)
SECRET_BODY = b"root:x:0:0:INTERNAL-ONLY-ANSWER"


@asynccontextmanager
async def app_client(settings: Settings, **changes: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(msgspec.structs.replace(settings, **changes))) as client:
        yield client


@contextmanager
def chatty_receiver(status: int) -> Iterator[tuple[str, list[bytes]]]:
    """A webhook receiver on loopback that answers `status` with a body nobody outside may see."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(status)
            self.send_header("Content-Length", str(len(SECRET_BODY)))
            self.end_headers()
            self.wfile.write(SECRET_BODY)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


async def test_invalid_utf8_answers_a_400_problem_on_every_route(client):
    for body in INVALID_UTF8:
        response = await client.post("/api/v1/auth/login", headers=JSON, content=body)
        assert_problem(response, 400, "UTF-8")
    world = await build_world(client)
    coordinator = {**world.headers["coord"], **JSON}
    for body in (
        b'{"treatment_site": "USZ", "therapy": "CAR-T \xff"}',
        b'{"treatment_site": "USZ", "therapy": "x\xed\xa0\x80"}',
    ):
        assert_problem(await client.post("/api/v1/cases", headers=coordinator, content=body), 400, "UTF-8")
    assert_problem(await client.post("/api/v1/cases", headers=coordinator, content=b'{"therapy": '), 400)
    assert_problem(await client.post("/api/v1/cases", headers=coordinator, content=b"\xff\xfe\x00"), 400)
    assert (await world.ok("coord", "GET", "/api/v1/cases")) == []


async def test_a_leg_from_a_site_to_itself_is_invalid_input_and_nothing_is_planned(client):
    world = await build_world(client)
    coi = await world.new_case()
    unit = await world.unit("nurse", coi, "APH", "USZ-APH")
    response = await world.call(
        "coord",
        "POST",
        "/api/v1/shipments",
        json={
            "coi": coi,
            "from_site": "USZ-APH",
            "to_site": "USZ-APH",
            "container_id": "SHIPPER-7",
            "profile": "fresh",
            "planned_departure": "2026-03-01T08:00:00Z",
            "planned_arrival": "2026-03-01T12:00:00Z",
            "units": [unit],
        },
    )
    body = assert_problem(response, 422, "USZ-APH")
    assert body["errors"] == [{"field": "to_site", "message": "same as from_site"}]
    assert (await world.ok("coord", "GET", "/api/v1/shipments")) == []


async def _site_with_coordinator(client) -> dict[str, str]:
    root = await admin(client)
    await make_site(client, root, "CRX", kind="courier_depot")
    return await make_user(client, root, "coord", ["coordinator"], ["CRX"])


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:8000/api/v1/users",
        "http://localhost:5432/",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[::1]:8000/",
        "http://2130706433/",  # 127.0.0.1 written as one number
        "file:///etc/passwd",
        "ftp://hooks.example.com/x",
    ],
)
async def test_webhooks_to_the_servers_own_network_are_refused(client, target):
    coordinator = await _site_with_coordinator(client)
    response = await client.post(
        "/api/v1/sites/CRX/subscriptions", headers=coordinator, json={"channel": "webhook", "target": target}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "target"
    listed = await client.get("/api/v1/sites/CRX/subscriptions", headers=coordinator)
    assert listed.json() == []


async def test_an_administrators_allow_list_opens_exactly_what_it_names(settings):
    async with app_client(settings, webhook_allow="127.0.0.1, localhost") as client:
        coordinator = await _site_with_coordinator(client)
        for target, status in (
            ("http://127.0.0.1:9/hook", 201),
            ("http://localhost:9/hook", 201),
            ("http://10.1.2.3/hook", 422),
            ("http://169.254.169.254/", 422),
            ("file:///etc/passwd", 422),
        ):
            response = await client.post(
                "/api/v1/sites/CRX/subscriptions",
                headers=coordinator,
                json={"channel": "webhook", "target": target},
            )
            assert response.status_code == status, (target, response.text)


async def _deliver_one_alert(pool, settings: Settings) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await alerting.raise_alert(
            conn,
            kind="handover_unconfirmed",
            severity="critical",
            title="Hand-over not confirmed",
            detail="test alert",
            condition_key="hardening-test",
            sites=["CRX"],
        )
    await notify.dispatch(pool)
    await notify.deliver_due(pool, settings)


async def test_the_delivery_log_shows_the_status_code_never_the_answer(settings, database_url):
    allowed = msgspec.structs.replace(settings, webhook_allow="127.0.0.1")
    with chatty_receiver(500) as (url, received):
        async with app_client(allowed) as client:
            coordinator = await _site_with_coordinator(client)
            created = await client.post(
                "/api/v1/sites/CRX/subscriptions",
                headers=coordinator,
                json={"channel": "webhook", "target": url},
            )
            assert created.status_code == 201, created.text
            pool = await create_pool(database_url, min_size=1, max_size=2)
            try:
                await _deliver_one_alert(pool, allowed)
            finally:
                await pool.close()
            assert len(received) == 1
            log = await client.get(
                f"/api/v1/sites/CRX/subscriptions/{created.json()['subscription']['id']}/deliveries",
                headers=coordinator,
            )
    [delivery] = log.json()
    assert [(a["ok"], a["status_code"], a["error"]) for a in delivery["log"]] == [(False, 500, "HTTP 500")]
    assert delivery["last_error"] == "HTTP 500"
    assert b"INTERNAL-ONLY" not in log.content


async def test_a_delivery_is_checked_again_and_not_sent_once_the_target_is_no_longer_allowed(
    settings, database_url
):
    # Subscribed while the allow-list named the address; at delivery it no longer does (in production:
    # the name now resolves to a private address). Nothing is sent, and the log says why.
    with chatty_receiver(200) as (url, received):
        async with app_client(settings, webhook_allow="127.0.0.1") as client:
            coordinator = await _site_with_coordinator(client)
            created = await client.post(
                "/api/v1/sites/CRX/subscriptions",
                headers=coordinator,
                json={"channel": "webhook", "target": url},
            )
            assert created.status_code == 201, created.text
            pool = await create_pool(database_url, min_size=1, max_size=2)
            try:
                await _deliver_one_alert(pool, settings)  # settings: no allow-list
            finally:
                await pool.close()
            log = await client.get(
                f"/api/v1/sites/CRX/subscriptions/{created.json()['subscription']['id']}/deliveries",
                headers=coordinator,
            )
    assert received == []
    [attempt] = log.json()[0]["log"]
    assert attempt["ok"] is False
    assert attempt["status_code"] is None
    assert "not public" in attempt["error"]


async def test_oversized_correction_fields_are_refused_and_nothing_is_stored(client):
    world = await build_world(client)
    coi, _aph, _ship = await starting_material_at_manufacturing(world)
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    label = next(e for e in timeline["events"] if e["action"] == "label")
    path = f"/api/v1/events/{label['id']}/corrections"
    huge = {"reason": "wrong expiry", "fields": {"note": "x" * 9_000_000}}
    response = await world.call("coord", "POST", path, json=huge)
    assert_problem(response, 413)
    for fields in (
        {"note": "x" * 2001},
        {f"field{i}": 1 for i in range(51)},
        {"k" * 101: 1},
        {"nested": {"deep": ["structure"]}},
        {},
    ):
        response = await world.call("coord", "POST", path, json={"reason": "wrong expiry", "fields": fields})
        assert_problem(response, 400)
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")) == timeline


async def test_healthz_tells_a_stranger_the_status_only(client):
    anonymous = await client.get("/healthz")
    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "ok"})
    assert b"mqtt" not in anonymous.content
    signed_in = (await client.get("/healthz", headers=await admin(client))).json()
    assert set(signed_in) == {"status", "version", "database", "broker"}


async def test_hsts_is_sent_exactly_when_the_public_url_is_https(settings):
    expected = "max-age=31536000; includeSubDomains"
    async with app_client(settings, public_url="https://celltrail.example.org") as client:
        for path in ("/healthz", "/login", "/api/v1/no-such-thing", "/api/v1/cases"):
            response = await client.get(path)
            assert response.headers.get("strict-transport-security") == expected, path
    for public_url in (None, "http://celltrail.example.org"):
        async with app_client(settings, public_url=public_url) as client:
            response = await client.get("/healthz")
            assert "strict-transport-security" not in response.headers


async def test_a_backup_is_readable_by_its_owner_only_from_the_start(database_url, tmp_path: Path, client):
    target = tmp_path / "dumps" / "celltrail.dump"
    report = backup(database_url, target)
    assert report.path == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not target.with_name(target.name + ".partial").exists()
