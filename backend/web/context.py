"""What every page shows: who is signed in, with which roles and sites, the navigation their roles
allow, the CSRF token their scripts send back, and when the session ends."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from litestar import Request

from backend.db.types import Pool
from backend.domain.access import Principal, Role
from backend.http.security import SESSION_COOKIE, csrf_token
from backend.web.zones import site_zones, zone_for

# (path, label, roles that see it): a link is shown only to those who may open the page.
NAVIGATION: Final = (
    ("/board", "Live board", frozenset({Role.COORDINATOR, Role.QA, Role.MANUFACTURING, Role.ADMIN})),
    (
        "/alerts",
        "Alerts",
        frozenset({Role.COORDINATOR, Role.PHARMACIST, Role.QA, Role.MANUFACTURING, Role.ADMIN}),
    ),
    ("/receipt", "Receipt desk", frozenset({Role.PHARMACIST, Role.MANUFACTURING, Role.COORDINATOR})),
    ("/pharmacy", "Pharmacy stock", frozenset({Role.PHARMACIST})),
    ("/bedside", "Bedside", frozenset({Role.PHARMACIST})),
    ("/courier", "Courier", frozenset({Role.COURIER})),
    (
        "/planning/calendar",
        "Capacity",
        frozenset({Role.MANUFACTURING, Role.QA, Role.COORDINATOR, Role.ADMIN}),
    ),
    ("/planning/orders", "Orders", frozenset({Role.MANUFACTURING, Role.QA, Role.COORDINATOR, Role.ADMIN})),
    ("/planning/slots", "Apheresis slots", frozenset({Role.COORDINATOR, Role.PHARMACIST, Role.ADMIN})),
    ("/kpis", "KPIs", frozenset({Role.COORDINATOR, Role.MANUFACTURING, Role.QA, Role.ADMIN})),
)

# Where each role starts after signing in, first match wins.
HOME: Final = (
    (Role.COORDINATOR, "/board"),
    (Role.COURIER, "/courier"),
    (Role.PHARMACIST, "/receipt"),
    (Role.MANUFACTURING, "/receipt"),
    (Role.QA, "/board"),
    (Role.ADMIN, "/board"),
)


class NavItem(msgspec.Struct, frozen=True):
    path: str
    label: str
    current: bool


def home_of(principal: Principal) -> str:
    return next((path for role, path in HOME if role in principal.roles), "/login")


def page_context(
    request: Request[Any, Any, Any], principal: Principal, title: str, **extra: Any
) -> dict[str, Any]:
    path = request.url.path
    nav = [
        NavItem(p, label, path == p or path.startswith(p + "/"))
        for p, label, roles in NAVIGATION
        if principal.has_any(roles)
    ]
    readers = frozenset({Role.COORDINATOR, Role.PHARMACIST, Role.QA, Role.MANUFACTURING, Role.ADMIN})
    return {
        "zone": "UTC",
        "zones": {},
        "alerts_live": principal.has_any(readers),
        "title": title,
        "me": principal,
        "roles": sorted(r.value for r in principal.roles),
        "sites": sorted(principal.sites),
        "nav": nav,
        "csrf": csrf_token(request.cookies.get(SESSION_COOKIE, "")),
        **extra,
    }


async def page_view(
    request: Request[Any, Any, Any],
    principal: Principal,
    pool: Pool,
    title: str,
    site: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """`page_context` with times in the zone of `site` (the page's own site: a delivery's destination,
    the ward), else of the person's first site."""
    zones = await site_zones(pool)
    zone = zone_for(zones, site, *sorted(principal.sites))
    return {**page_context(request, principal, title, **extra), "zones": zones, "zone": zone}
