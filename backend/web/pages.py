"""The pages people work in. Thin: each handler gathers what its page shows from the services and
renders a template; every change a page makes goes through the same JSON API as any other client."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from backend.db.repo import alerts as alert_repo
from backend.db.types import Pool
from backend.domain import alarm_states
from backend.domain.access import RECORD_READERS, Principal, Role, policy
from backend.reports.record import case_record
from backend.services import board, samples, shipments, trials
from backend.services.visibility import site_filter
from backend.web import inventory, search
from backend.web.chart import chart_pair
from backend.web.context import home_of, page_view
from backend.web.session import PAGE
from backend.web.zones import site_zones, zone_for
from labels.model import INVESTIGATIONAL_STATEMENT

BOARD_READERS: Final = (Role.COORDINATOR, Role.QA, Role.MANUFACTURING, Role.ADMIN)
ALERT_READERS: Final = (Role.COORDINATOR, Role.PHARMACIST, Role.QA, Role.MANUFACTURING, Role.ADMIN)
RECEIVERS: Final = (Role.PHARMACIST, Role.MANUFACTURING, Role.COORDINATOR)
PEOPLE: Final = tuple(r for r in Role if r is not Role.BRIDGE)
DECIDED: Final = ("received", "quarantined")
# The steps the receipt page lists once a delivery has arrived: who scanned what, who decided.
RECEIPT_STEPS: Final = ("receive", "receipt")
WORKER: Final = Path(__file__).resolve().parent / "static" / "courier-sw.js"


def page(*roles: Role) -> dict[str, Any]:
    return {**policy(*roles), **PAGE}


@get("/", opt=page(*PEOPLE), include_in_schema=False)
async def home(principal: NamedDependency[Principal]) -> Redirect:
    return Redirect(home_of(principal))


def _filters(site: str | None, status: str | None, severity: str | None, q: str | None) -> board.Filters:
    return board.Filters(site=site or None, status=status or None, severity=severity or None, q=q or None)


async def _board_lines(pool: Pool, principal: Principal, filters: board.Filters, now: datetime) -> Any:
    # The search box is matched here, by every printed and scanned form of an identifier (search.py).
    unsearched = board.Filters(site=filters.site, status=filters.status, severity=filters.severity)
    return search.search(await board.active_lines(pool, principal, unsearched, now), filters.q)


@get("/board", opt=page(*BOARD_READERS), include_in_schema=False)
async def board_page(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    site: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    severity: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
) -> Template:
    filters = _filters(site, status, severity, q)
    now = datetime.now(UTC)
    lines = await _board_lines(pool, principal, filters, now)
    return Template(
        "board.html",
        context=await page_view(
            request,
            principal,
            pool,
            "Live board",
            lines=lines,
            filters=filters,
            now=now,
            statuses=board.STATUSES,
            severities=board.SEVERITIES,
            trials=await trials.trial_cases(pool, [line.row.coi for line in lines]),
        ),
    )


@get("/board/rows", opt=page(*BOARD_READERS), include_in_schema=False)
async def board_rows(
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    site: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    severity: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
) -> Template:
    """The board's table body alone: the live script swaps it in when something changes."""
    now = datetime.now(UTC)
    lines = await _board_lines(pool, principal, _filters(site, status, severity, q), now)
    zones = await site_zones(pool)
    zone = zone_for(zones, *sorted(principal.sites))
    marked = await trials.trial_cases(pool, [line.row.coi for line in lines])
    return Template(
        "board_rows.html",
        context={"lines": lines, "now": now, "zones": zones, "zone": zone, "trials": marked},
    )


@get("/shipments/{shipment_id:str}", opt=page(*RECORD_READERS), include_in_schema=False)
async def shipment_page(
    request: Request[Any, Any, Any],
    shipment_id: FromPath[str],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
) -> Template:
    shipment = await shipments.get_shipment(pool, principal, shipment_id)
    record = await case_record(pool, principal, shipment.coi)
    leg = next(leg for leg in record.legs if leg.shipment_id == shipment.id)
    events = [e for e in record.events if e.shipment_id == shipment.id]
    alerts = [a for a in record.alerts if a.shipment_id == shipment.id]
    return Template(
        "shipment.html",
        context=await page_view(
            request,
            principal,
            pool,
            f"Shipment {shipment.id}",
            site=shipment.to_site,
            shipment=shipment,
            record=record,
            leg=leg,
            events=events,
            alerts=alerts,
            chart=chart_pair(leg, events, zone_for(await site_zones(pool), shipment.to_site)),
            can_print=principal.has_any(frozenset(RECORD_READERS)),
        ),
    )


@get("/cases/{coi:str}", opt=page(*RECORD_READERS), include_in_schema=False)
async def case_page(
    request: Request[Any, Any, Any],
    coi: FromPath[str],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
) -> Template:
    record = await case_record(pool, principal, coi)
    zones = await site_zones(pool)
    charts = {
        leg.shipment_id: chart_pair(
            leg,
            [e for e in record.events if e.shipment_id == leg.shipment_id],
            zone_for(zones, leg.to_site),
        )
        for leg in record.legs
    }
    return Template(
        "case.html",
        context=await page_view(
            request,
            principal,
            pool,
            f"Case {record.eye_readable}",
            site=record.treatment_site,
            record=record,
            charts=charts,
            # A trial case's labels carry this statement; the page says it as they do.
            statement=INVESTIGATIONAL_STATEMENT,
            samples=await samples.samples_of_case(pool, record.coi),
        ),
    )


@get("/alerts", opt=page(*ALERT_READERS), include_in_schema=False)
async def alerts_page(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
) -> Template:
    sites = site_filter(principal)
    async with pool.acquire() as conn:
        current = await alert_repo.list_for(conn, sites, list(alarm_states.NEEDS_ATTENTION), None, None, 500)
        history = await alert_repo.list_for(conn, sites, ["resolved", "closed"], None, None, 100)
    return Template(
        "alerts.html",
        context=await page_view(
            request,
            principal,
            pool,
            "Alerts",
            current=current,
            history=history,
            can_close=principal.has_any(frozenset({Role.COORDINATOR, Role.QA})),
        ),
    )


@get("/receipt", opt=page(*RECEIVERS), include_in_schema=False)
async def receipt_list(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
) -> Template:
    """Deliveries coming to the reader's sites."""
    incoming = [
        s
        for s in await shipments.list_shipments(pool, principal, True, 200)
        if principal.at_site(s.to_site) or Role.ADMIN in principal.roles
    ]
    return Template(
        "receipt_list.html",
        context=await page_view(
            request,
            principal,
            pool,
            "Receipt desk",
            incoming=incoming,
            trials=await trials.trial_cases(pool, [s.coi for s in incoming]),
        ),
    )


@get("/receipt/{shipment_id:str}", opt=page(*RECEIVERS), include_in_schema=False)
async def receipt_desk(
    request: Request[Any, Any, Any],
    shipment_id: FromPath[str],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
) -> Template:
    view = await shipments.receipt_view(pool, principal, shipment_id)
    decided = view.shipment.status in DECIDED
    history: list[Any] = []
    if view.shipment.status in ("arrived", *DECIDED):
        record = await case_record(pool, principal, view.shipment.coi)
        history = [
            e for e in record.events if e.shipment_id == view.shipment.id and e.action in RECEIPT_STEPS
        ]
    return Template(
        "receipt.html",
        context=await page_view(
            request,
            principal,
            pool,
            f"Receive {shipment_id}",
            site=view.shipment.to_site,
            view=view,
            shipment=view.shipment,
            decided=decided,
            history=history,
            decision=next((e for e in reversed(history) if e.action == "receipt"), None),
            can_decide=principal.has_any(frozenset({Role.PHARMACIST, Role.MANUFACTURING})) and not decided,
            trials=await trials.trial_cases(pool, [view.shipment.coi]),
        ),
    )


@get("/courier", opt=page(Role.COURIER), include_in_schema=False)
async def courier_page(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
) -> Template:
    return Template("courier.html", context=await page_view(request, principal, pool, "Courier"))


@get("/courier-sw.js", opt=page(Role.COURIER), include_in_schema=False)
async def courier_worker() -> Response[bytes]:
    """The courier page's service worker, served from the site's root so it may control /courier (a
    worker under /static/ could only control /static/). The browser fetches it with the courier's
    session cookie, like the page."""
    return Response(
        WORKER.read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@get("/bedside", opt=page(Role.PHARMACIST), include_in_schema=False)
async def bedside_page(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
) -> Template:
    return Template("bedside.html", context=await page_view(request, principal, pool, "Bedside verification"))


@get("/pharmacy", opt=page(Role.PHARMACIST), include_in_schema=False)
async def pharmacy_page(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
) -> Template:
    """What is stored where at the reader's sites, and the bags dispensed or thawing."""
    lines = await inventory.stock(pool, principal)
    return Template(
        "pharmacy.html",
        context=await page_view(
            request,
            principal,
            pool,
            "Pharmacy stock",
            lines=lines,
            stored=[line for line in lines if line.status in ("received", "stored")],
            dispensed=[line for line in lines if line.status == "dispensed"],
            thawed=[line for line in lines if line.status == "thawed"],
            now=datetime.now(UTC),
            trials=await trials.trial_cases(pool, [line.coi for line in lines]),
        ),
    )
