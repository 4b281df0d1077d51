"""The authorization matrix, generated from the app's route table: every route × every role (and, for
routes scoped to a site in the path, own site × other site) is called against the real API, and the
answer is checked against the policy the route declares. A route added without a policy fails here.

Records of another site (cases, units, shipments) answer 404 to people not bound to any of their sites,
so that their existence is not confirmed; that part runs on a real vein-to-vein case."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from litestar import Litestar

from backend.domain.access import Policy, Role
from tests.integration.helpers import admin, assert_problem, login, make_site, make_user
from tests.integration.journey import build_world, starting_material_at_manufacturing

# Routes anyone may call without signing in. Adding one is a security decision: it must be listed here.
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("POST", "/api/v1/auth/login"),
    # The web pages' sign-in form.
    ("GET", "/login"),
    ("POST", "/login"),
    # The pages' scripts and styles: the same files for everyone, no data in them.
    ("GET", "/static/{file_path:path}"),
    ("HEAD", "/static/{file_path:path}"),
}
# A live Server-Sent Events stream never ends by itself: its admitted callers are tested in tests/e2e.
STREAMING = {("GET", "/api/v1/stream")}
# Path parameters whose value does not matter to the guard; site parameters are filled per case below.
SAMPLE_PARAMS = {
    "alert_id": "1",
    "event_id": "1",
    "handover_id": "1",
    "key_id": "1",
    "subscription_id": "1",
    "version": "1",
    "logger_id": "LGR-MATRIX",
    "username": "admin",
    "kind": "bag",
    "filename": "label.png",
    "code": "fresh",
    "file_path": "app.css",
    "capture_id": "0" * 32,
    "product_name": "Apheresis",
    "product": "car-t",
    "day": "2026-12-24",
}
GUARD_DENIALS = ("this action needs one of the roles", "declares no access policy")
OWN_SITE, OTHER_SITE = "USZ", "CTA"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with Litestar's typed placeholders, e.g. /api/v1/cases/{coi:str}
    opt: dict[str, Any]

    @property
    def policy(self) -> Policy | None:
        declared = self.opt.get("policy")
        return declared if isinstance(declared, Policy) else None

    @property
    def public(self) -> bool:
        return bool(self.opt.get("public"))

    @property
    def page(self) -> bool:
        """A web page: it answers a person in a browser with HTML (sign-in redirect, error page)."""
        return bool(self.opt.get("page"))

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)(?::\w+)?}", self.path)

    def url(self, values: dict[str, str]) -> str:
        return re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], self.path)


def route_table(app: Litestar) -> list[Route]:
    routes = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(getattr(handler, "http_methods", ()) or ()):
                # OPTIONS handlers are Litestar's own CORS preflight answers; /schema is the API
                # description, readable by any signed-in user (backend/api/security.py).
                if method == "OPTIONS" or route.path.startswith("/schema"):
                    continue
                routes.append(Route(method, route.path, dict(handler.opt)))
    return routes


def test_every_route_declares_a_policy_or_is_a_listed_public_route(app):
    routes = route_table(app)
    assert len(routes) > 50
    undeclared = [(r.method, r.path) for r in routes if r.policy is None and not r.public]
    assert undeclared == [], "routes without opt=policy(...) or PUBLIC"
    public = {(r.method, r.path) for r in routes if r.public}
    assert public <= PUBLIC_ROUTES, f"unlisted public routes: {sorted(public - PUBLIC_ROUTES)}"
    assert {("GET", "/healthz"), ("POST", "/api/v1/auth/login")} <= public
    for r in routes:
        if r.policy is not None and r.policy.site_param is not None:
            assert r.policy.site_param in r.params, f"{r.path} checks a site it does not have"


async def people(client: Any, root: dict[str, str]) -> dict[Role, dict[str, str]]:
    """One person per role, bound to OWN_SITE only (the bridge's service account to HQ)."""
    await make_site(client, root, OWN_SITE)
    await make_site(client, root, OTHER_SITE, kind="manufacturing")
    headers = {Role.ADMIN: root}
    for role in Role:
        if role is not Role.ADMIN:
            site = "HQ" if role is Role.BRIDGE else OWN_SITE
            headers[role] = await make_user(client, root, f"matrix-{role.value}", [role.value], [site])
    return headers


async def signed_in_again(client: Any) -> dict[Role, dict[str, str]]:
    headers = {Role.ADMIN: await admin(client)}
    for role in Role:
        if role is not Role.ADMIN:
            headers[role] = await login(client, f"matrix-{role.value}", "correct horse battery")
    return headers


async def call(client: Any, route: Route, headers: dict[str, str] | None, values: dict[str, str]) -> Any:
    body = None if route.method in ("GET", "DELETE") else {}
    return await client.request(
        route.method, route.url(values), headers=headers or {}, json=body, follow_redirects=False
    )


def guard_denied(response: Any) -> bool:
    if response.status_code != 403:
        return False
    detail = response.json().get("detail", "") if "json" in response.headers["content-type"] else ""
    return any(words in detail for words in GUARD_DENIALS)


async def test_every_route_answers_every_role_as_its_policy_declares(app, client):
    headers = await people(client, await admin(client))
    values = {**SAMPLE_PARAMS, "coi": "CHA999926000001", "shipment_id": "SHP-2026-000001"}
    values |= {"unit_id": "CHA999926000001-APH-01", "site": OWN_SITE, "site_code": OWN_SITE}
    checked = 0
    # Sign-out last: it revokes the token the later calls would use.
    routes = sorted(route_table(app), key=lambda r: (r.path == "/logout", r.path == "/api/v1/auth/logout"))
    for route in routes:
        key = (route.method, route.path)
        if route.public:
            response = await call(client, route, None, values)
            assert response.status_code not in (401, 403), (key, response.text)
            continue
        anonymous = await call(client, route, None, values)
        if route.page:
            assert anonymous.status_code == 303, (key, anonymous.text)
            assert anonymous.headers["location"].startswith("/login?next="), key
        else:
            assert anonymous.status_code == 401, (key, anonymous.text)
        rule = route.policy
        assert rule is not None
        if route.path == "/logout":
            # The API's sign-out, checked just before, revoked every token: sign everyone in again.
            headers = await signed_in_again(client)
        for role, who in headers.items():
            allowed = role in rule.roles
            if allowed and key in STREAMING:
                continue
            response = await call(client, route, who, values)
            checked += 1
            if not allowed and route.page:
                assert response.status_code == 403, (key, role, response.text)
                assert "needs one of the roles" in response.text, (key, role)
            elif not allowed:
                body = assert_problem(response, 403, "needs one of the roles")
                assert role.value in body["detail"], (key, role)
            else:
                assert response.status_code != 401, (key, role, response.text)
                assert not guard_denied(response), (key, role, response.text)
                if rule.site_param is not None:
                    assert response.status_code != 403, (key, role, response.text)
                    await check_other_site(client, route, rule, role, who, values)
    assert checked > 300


async def check_other_site(
    client: Any, route: Route, rule: Policy, role: Role, who: dict[str, str], values: dict[str, str]
) -> None:
    assert rule.site_param is not None
    response = await call(client, route, who, values | {rule.site_param: OTHER_SITE})
    if role in rule.any_site:
        assert response.status_code != 403, (route.path, role, response.text)
    else:
        assert_problem(response, 403, f"not assigned to site {OTHER_SITE}")


# Read routes about one record: the record's sites decide who sees it, and everyone else gets 404.
RECORD_PARAMS = ("coi", "shipment_id", "unit_id")


async def test_records_of_another_site_answer_404_to_every_role(app, client):
    world = await build_world(client)
    coi, unit, shipment = await starting_material_at_manufacturing(world)
    root = world.headers["admin"]
    await make_site(client, root, "KSB")
    values = {**SAMPLE_PARAMS, "coi": coi, "unit_id": unit, "shipment_id": shipment}
    # Insiders: bound to a site the case passed through. Outsiders: the same roles at another hospital.
    insiders = {
        Role.COORDINATOR: "coord",
        Role.PHARMACIST: "nurse",
        Role.COURIER: "courier1",
        Role.MANUFACTURING: "mfg",
        Role.QA: "qa",
    }
    reads = [
        r
        for r in route_table(app)
        if r.method == "GET" and r.policy is not None and set(r.params) & set(RECORD_PARAMS)
    ]
    assert len(reads) >= 10
    checked = 0
    for role, insider in insiders.items():
        outsider = await make_user(client, root, f"outside-{role.value}", [role.value], ["KSB"])
        for route in reads:
            assert route.policy is not None
            if role not in route.policy.roles:
                continue
            seen = await call(client, route, world.headers[insider], values)
            assert seen.status_code not in (401, 404), (route.path, role, seen.text)
            hidden = await call(client, route, outsider, values)
            if route.page:
                assert hidden.status_code == 404, (route.path, role, hidden.text)
            else:
                assert_problem(hidden, 404)
            checked += 1
    # Administrators are bound to no particular site and see every record.
    for route in reads:
        assert route.policy is not None
        if Role.ADMIN in route.policy.roles:
            assert (await call(client, route, root, values)).status_code == 200, route.path
    assert checked > 30
