"""/healthz and the OpenAPI description."""

from __future__ import annotations

import asyncio
import re

from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import load_settings
from tests.conftest import ADMIN_PASSWORD
from tests.integration.helpers import admin, assert_problem
from tests.servers import Broker


async def test_healthz_tells_anyone_the_status_and_only_a_signed_in_caller_the_details(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}  # no version, no broker address for strangers
    bogus = await client.get("/healthz", headers={"Authorization": "Bearer not-a-token"})
    assert (bogus.status_code, bogus.json()) == (200, {"status": "ok"})
    body = (await client.get("/healthz", headers=await admin(client))).json()
    assert body["status"] == "ok"
    assert body["version"]
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True, body


async def test_healthz_reports_a_broker_that_went_away(database_url, tmp_path):
    broker = Broker(tmp_path / "broker").start()
    settings = load_settings(
        {},
        database_url=database_url,
        mqtt_url=broker.url,
        broker_check_seconds=0.2,
        admin_password=ADMIN_PASSWORD,
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        root = await admin(client)
        assert (await client.get("/healthz", headers=root)).json()["broker"]["ok"] is True
        broker.stop()
        for _ in range(100):
            # The first failed probe may see the connection reset; the next ones find nothing listening.
            detailed = (await client.get("/healthz", headers=root)).json()
            if "cannot reach" in detailed["broker"]["detail"]:
                break
            await asyncio.sleep(0.05)
        response = await client.get("/healthz")
    assert response.status_code == 200  # the database answers, so the backend is up
    assert response.json() == {"status": "degraded"}
    assert "cannot reach" in detailed["broker"]["detail"]


async def test_openapi_needs_a_token_and_lists_every_route_with_schemas(client, app):
    assert_problem(await client.get("/schema/openapi.json"), 401)
    response = await client.get("/schema/openapi.json", headers=await admin(client))
    assert response.status_code == 200
    spec = response.json()
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    for route in app.routes:
        if route.path.startswith("/schema"):
            continue
        for handler in getattr(route, "route_handlers", []):
            # The web pages, their sign-in form and static files are for browsers, not API clients.
            if handler.opt.get("page") or not handler.resolve_include_in_schema():
                continue
            for method in set(handler.http_methods) - {"HEAD", "OPTIONS"}:
                path = re.sub(r":\w+}", "}", route.path)
                assert (path, method) in documented, (path, method)
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    assert "LoginRequest" in str(login["requestBody"])
    assert "LoginResponse" in str(login["responses"]["200"])
    assert "BearerToken" in spec["components"]["securitySchemes"]


def test_every_route_declares_an_access_policy(app):
    missing = []
    for route in app.routes:
        if route.path.startswith("/schema"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.http_methods == {"OPTIONS"}:
                continue  # Litestar's automatic OPTIONS answers
            if not (handler.opt.get("public") or handler.opt.get("policy")):
                missing.append(f"{route.path} {sorted(handler.http_methods)}")
    assert missing == []


def test_public_routes_are_exactly_sign_in_health_and_page_assets(app):
    public = {
        route.path
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get("public")
    }
    # The web pages' sign-in form and their scripts and styles are the only additions.
    assert public == {"/healthz", "/api/v1/auth/login", "/login", "/static/{file_path:path}"}
