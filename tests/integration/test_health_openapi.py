"""/healthz and the OpenAPI description."""

from __future__ import annotations

import asyncio
import re

from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import load_settings
from tests.integration.helpers import admin, assert_problem
from tests.servers import Broker


async def test_healthz_reports_database_and_broker_without_a_token(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True, body


async def test_healthz_reports_a_broker_that_went_away(database_url, tmp_path):
    broker = Broker(tmp_path / "broker").start()
    settings = load_settings({}, database_url=database_url, mqtt_url=broker.url, broker_check_seconds=0.2)
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/healthz")).json()["broker"]["ok"] is True
        broker.stop()
        for _ in range(100):
            body = (await client.get("/healthz")).json()
            if not body["broker"]["ok"]:
                break
            await asyncio.sleep(0.05)
        response = await client.get("/healthz")
    assert response.status_code == 200  # the database answers, so the backend is up
    assert response.json()["status"] == "degraded"
    assert "cannot reach" in response.json()["broker"]["detail"]


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
