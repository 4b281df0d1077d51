"""Planning pages: a manufacturing site's capacity calendar (week or month, booked and free per suite),
a collection site's apheresis slots, and the KPI page with its charts. Changes go through the JSON API
(static/planning_*.js); the booking panel of the case page is static/planning_case.js."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from backend.db.repo import planning as repo
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.domain.errors import InvalidInput, NotFound
from backend.services.planning import capacity, kpis
from backend.services.visibility import site_filter
from backend.web.context import page_context
from backend.web.planning_charts import bar_chart, spread_chart
from backend.web.session import PAGE

CALENDAR_READERS: Final = (Role.MANUFACTURING, Role.QA, Role.COORDINATOR, Role.ADMIN)
SLOT_KEEPERS: Final = (Role.COORDINATOR, Role.PHARMACIST, Role.ADMIN)
KPI_READERS: Final = (Role.COORDINATOR, Role.MANUFACTURING, Role.QA, Role.ADMIN)


def _page(*roles: Role) -> dict[str, Any]:
    return {**policy(*roles), **PAGE}


async def _sites(pool: Pool, principal: Principal, kinds: tuple[str, ...]) -> list[dict[str, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT code, name, kind, time_zone FROM sites WHERE kind = ANY($1::text[]) ORDER BY code",
            list(kinds),
        )
    return [dict(r) for r in rows if principal.sees([r["code"]])]


def _chosen(sites: list[dict[str, str]], wanted: str | None) -> dict[str, str] | None:
    if wanted:
        found = next((s for s in sites if s["code"] == wanted), None)
        if found is None:
            # The same answer whether the site does not exist or is not the caller's.
            raise NotFound(f"no site {wanted} among yours")
        return found
    return sites[0] if sites else None


def _start(text: str | None, zone: str) -> date:
    if not text:
        return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if not 2000 <= day.year <= 2100:
        raise InvalidInput("choose a date between 2000 and 2100")
    return day


@get("/planning/calendar", opt=_page(*CALENDAR_READERS), include_in_schema=False)
async def calendar_page(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    site: FromQuery[str | None] = None,
    view: FromQuery[str] = "week",
    start: FromQuery[str | None] = None,
) -> Template:
    sites = await _sites(pool, principal, ("manufacturing",))
    chosen = _chosen(sites, site)
    zone = chosen["time_zone"] if chosen else "UTC"
    first = _start(start, zone)
    month = view == "month"
    if month:
        first = first.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        days, previous = (following - first).days, (first - timedelta(days=1)).replace(day=1)
    else:
        first -= timedelta(days=first.weekday())
        days, following, previous = 7, first + timedelta(days=7), first - timedelta(days=7)
    cal = await capacity.calendar(pool, chosen["code"], first, days) if chosen else None
    context = page_context(
        request,
        principal,
        "Manufacturing capacity",
        site_choices=sites,
        site=chosen,
        view="month" if month else "week",
        first=first,
        previous=previous,
        following=following,
        today=_start(None, zone),
        calendar=cal,
        can_edit=bool(chosen and principal.has_any(frozenset({Role.MANUFACTURING, Role.ADMIN}))),
    )
    context.update(zone=zone, zones={s["code"]: s["time_zone"] for s in sites})
    return Template("planning_calendar.html", context=context)


@get("/planning/slots", opt=_page(*SLOT_KEEPERS), include_in_schema=False)
async def slots_page(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    site: FromQuery[str | None] = None,
    start: FromQuery[str | None] = None,
) -> Template:
    sites = await _sites(pool, principal, ("apheresis", "hospital"))
    chosen = _chosen(sites, site)
    zone = chosen["time_zone"] if chosen else "UTC"
    first = _start(start, zone)
    found = (await capacity.list_slots(pool, chosen["code"], first, 14))[1] if chosen else []
    by_day: dict[date, list[Any]] = {}
    for slot in found:
        by_day.setdefault(slot.starts_at.astimezone(ZoneInfo(zone)).date(), []).append(slot)
    context = page_context(
        request,
        principal,
        "Apheresis slots",
        site_choices=sites,
        site=chosen,
        first=first,
        previous=first - timedelta(days=14),
        following=first + timedelta(days=14),
        by_day=sorted(by_day.items()),
    )
    context.update(zone=zone, zones={s["code"]: s["time_zone"] for s in sites})
    return Template("planning_slots.html", context=context)


@get("/kpis", opt=_page(*KPI_READERS), include_in_schema=False)
async def kpis_page(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    site: FromQuery[str | None] = None,
) -> Template:
    figures = await kpis.kpis(pool, principal, site or None)
    sites = await _sites(pool, principal, ("hospital", "apheresis", "manufacturing", "courier_depot"))
    charts = {
        "v2v": spread_chart(
            "Vein-to-vein days per month (median, range)",
            [(g.month or "", g.median_days, g.min_days, g.max_days) for g in figures.vein_to_vein_by_month],
        ),
        "turnaround": spread_chart(
            "Manufacturing turnaround days per month (median, range)",
            [(g.month or "", g.median_days, g.min_days, g.max_days) for g in figures.turnaround_by_month],
        ),
        "on_time": bar_chart(
            "On-time arrivals per lane (%)",
            [
                (lane.lane, None if lane.on_time_rate is None else lane.on_time_rate * 100)
                for lane in figures.lanes
            ],
            maximum=100,
        ),
        "legs": bar_chart(
            "Legs: median hours, planned and actual",
            [
                (f"{leg.label} ({kind})", value)
                for leg in figures.legs
                for kind, value in (("plan", leg.planned_median_hours), ("actual", leg.actual_median_hours))
            ],
        ),
    }
    context = page_context(
        request, principal, "KPIs", figures=figures, charts=charts, site_choices=sites, site=site or ""
    )
    zones = {s["code"]: s["time_zone"] for s in sites}
    context.update(zone=zone_of(zones, [site or "", *sorted(principal.sites)]), zones=zones)
    return Template("kpis.html", context=context)


@get("/planning/orders", opt=_page(*CALENDAR_READERS), include_in_schema=False)
async def orders_page(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
) -> Template:
    """Treatment orders of the caller's sites; the manufacturing site accepts or declines here, before
    any bag of the case has reached it (its case page is not yet theirs to open)."""
    async with pool.acquire() as conn:
        orders = await repo.orders_for_sites(conn, site_filter(principal), 200)
        zones = {r["code"]: r["time_zone"] for r in await conn.fetch("SELECT code, time_zone FROM sites")}
    deciders = frozenset({Role.MANUFACTURING})
    rows = [
        {
            "order": o,
            "can_decide": o.status == "requested"
            and principal.at_site(o.manufacturing_site)
            and principal.has_any(deciders),
            "case_link": principal.sees([o.ordering_site, o.collection_site]),
        }
        for o in orders
    ]
    context = page_context(request, principal, "Treatment orders", rows=rows)
    context.update(zone=zone_of(zones, sorted(principal.sites)), zones=zones)
    return Template("planning_orders.html", context=context)


def zone_of(zones: dict[str, str], sites: list[str]) -> str:
    return next((zones[s] for s in sites if s in zones), "UTC")


PAGES: Final = (calendar_page, slots_page, orders_page, kpis_page)
