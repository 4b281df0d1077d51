"""Planning pages in a real headless Chromium against a real backend process and PostgreSQL, at tablet
width: a coordinator orders a therapy on the case page, the manufacturing site accepts it there with its
signature, and the coordinator books the collection by keyboard alone; the manufacturing site's capacity
calendar shows the booking per suite, switches to the month, and flags it when capacity is lowered; the
KPI page draws its charts. Also the pages over plain HTTP for who may open them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.integration.journey import PASSWORD, World, build_world
from tests.integration.planning.planning_support import capacity, day_ahead, ordered_case, slots
from tests.web.browser_support import CHROMIUM, axe_violations, backend_process, chromium_args

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")

TIMEOUT_MS = 30_000
TABLET = {"width": 768, "height": 1024}


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    with backend_process(database_url, tmp_path / "backend.log") as url:
        yield url


@pytest.fixture
async def api(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        yield client


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=chromium_args(), headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def shots(artifacts_dir: Path) -> Path:
    path = artifacts_dir / "web"
    path.mkdir(exist_ok=True)
    return path


async def signed_in(
    browser: Browser, server: str, username: str, **options: Any
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(base_url=server, viewport=TABLET, has_touch=True, **options)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("who")).to_be_visible()
    return context, page


async def fits_the_width(page: Page) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow} px wider than the tablet"


async def test_order_accept_and_book_from_the_case_page(
    server: str, api: httpx.AsyncClient, browser: Browser, shots
):
    world = await build_world(api)
    await capacity(world, 1, ["S1", "S2"])
    day = day_ahead(9)
    first, second = await slots(world, day, "08:00", "13:00")
    coi = await world.new_case()

    context, page = await signed_in(browser, server, "coord")
    await page.goto(f"/cases/{coi}")
    order = page.get_by_role("form", name="Order a therapy")
    await order.get_by_label("Collection site").fill("USZ-APH")
    await order.get_by_label("Manufacturing site").fill("CTA")
    await order.get_by_label("MDT decision reference").fill("MDT-2026-03")
    await order.get_by_label("MDT decision date").fill(day_ahead(-1).isoformat())
    await order.get_by_label("Treating physician").fill("Dr. Hanna Keller")
    await order.get_by_role("button", name="Order therapy").click()
    await expect(page.get_by_test_id("order-facts")).to_contain_text("requested")
    await context.close()

    # The manufacturing site decides on its orders page: the case is not yet theirs to open.
    context, page = await signed_in(browser, server, "mfg")
    await page.get_by_role("link", name="Orders").click()
    decision = page.get_by_role("form", name=f"Decide the order of {coi}")
    await decision.get_by_label("Your password (signature)").fill(PASSWORD)
    await decision.get_by_role("button", name="Accept and sign").click()
    await expect(page.get_by_test_id("orders").get_by_role("row").filter(has_text=coi)).to_contain_text(
        "accepted"
    )
    await context.close()

    # Another case books the day's other slot first and takes suite S1; with two runs a day, the case
    # gets the day's second run in S2.
    other = await ordered_case(world)
    await world.ok("coord", "POST", f"/api/v1/cases/{other}/booking", 201, json={"slot_id": second})
    await capacity(world, 2, ["S1", "S2"])

    context, page = await signed_in(browser, server, "coord")
    await page.goto(f"/cases/{coi}")
    find = page.get_by_role("button", name="Find a collection slot")
    await find.focus()
    await page.keyboard.press("Enter")
    choice = page.get_by_role("radio").first
    await expect(choice).to_be_focused()
    await page.keyboard.press("Space")
    await expect(choice).to_be_checked()
    # The slot's time is the collection site's, 24-hour, with the zone named.
    await expect(page.locator(".plan-slots")).to_contain_text("08:00 CET")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Book this slot")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("booking")).to_contain_text("08:00")
    await expect(page.get_by_test_id("booking")).to_contain_text("suite S2")
    milestones = page.get_by_test_id("milestones")
    await expect(milestones.get_by_role("row")).to_have_count(8)
    await expect(milestones).to_contain_text("Infusion")
    await fits_the_width(page)
    await page.screenshot(path=str(shots / "planning-case-tablet.png"), full_page=True)
    await context.close()
    booked = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/plan")
    assert booked["booking"]["slot_id"] == first


async def test_capacity_calendar_week_month_and_flags(
    server: str, api: httpx.AsyncClient, browser: Browser, shots
):
    world = await build_world(api)
    await capacity(world, 2, ["S1", "S2"])
    day = day_ahead(5)
    a_slot, b_slot = await slots(world, day, "08:00", "09:00")
    a, b = await ordered_case(world), await ordered_case(world)
    await world.ok("coord", "POST", f"/api/v1/cases/{a}/booking", 201, json={"slot_id": a_slot})
    booked = await world.ok("coord", "POST", f"/api/v1/cases/{b}/booking", 201, json={"slot_id": b_slot})
    start = booked["manufacturing_start"]

    context, page = await signed_in(browser, server, "mfg")
    await page.get_by_role("link", name="Capacity").click()
    await expect(page).to_have_url(f"{server}/planning/calendar")
    await page.goto(f"/planning/calendar?site=CTA&view=week&start={start}")
    calendar = page.get_by_test_id("capacity-calendar")
    s1 = calendar.get_by_role("row").filter(has=page.get_by_role("rowheader", name="S1"))
    s2 = calendar.get_by_role("row").filter(has=page.get_by_role("rowheader", name="S2"))
    await expect(s1.get_by_role("link", name=f"▶ {a[-6:]}")).to_be_visible()
    await expect(s2.get_by_role("link", name=f"▶ {b[-6:]}")).to_be_visible()
    await expect(calendar.get_by_role("row").filter(has_text="Runs of car-t")).to_contain_text("2/2")
    await fits_the_width(page)
    await page.screenshot(path=str(shots / "planning-calendar-week.png"), full_page=True)

    # The month view, chosen by keyboard.
    await page.get_by_label("View").focus()
    await page.keyboard.press("ArrowDown")
    await page.get_by_role("button", name="Show").focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/planning/calendar\?site=CTA&view=month&start="))
    await expect(page.get_by_test_id("who")).to_contain_text("manufacturing · CTA")
    await expect(page.get_by_role("link", name="Next month")).to_be_visible()
    await expect(
        calendar.get_by_role("row").filter(has=page.get_by_role("rowheader", name="S1"))
    ).to_contain_text(a[-6:])
    await fits_the_width(page)

    # One run a day from now on: the later booking of that day no longer fits and is flagged.
    await page.get_by_label("Runs per day").fill("1")
    await page.get_by_role("button", name="Save capacity").click()
    flagged = page.get_by_role("alert").filter(has_text="Bookings that no longer fit")
    await expect(flagged).to_contain_text(b)
    await expect(flagged).to_contain_text("lowered to 1")
    await page.screenshot(path=str(shots / "planning-calendar-month.png"), full_page=True)
    await context.close()


async def test_kpi_page_and_who_opens_the_planning_pages(
    server: str, api: httpx.AsyncClient, browser: Browser
):
    world: World = await build_world(api)
    context, page = await signed_in(browser, server, "coord")
    await page.goto("/kpis")
    await expect(page.get_by_role("heading", name="KPIs")).to_be_visible()
    await expect(page.get_by_test_id("kpi-v2v")).to_contain_text("no case infused yet")
    await expect(page.get_by_role("link", name="Download CSV")).to_have_attribute("href", "/api/v1/kpis.csv")
    await page.goto("/planning/slots")
    await expect(page.get_by_role("heading", name="Apheresis slots")).to_be_visible()
    await page.get_by_label("First day").fill(day_ahead(3).isoformat())
    await page.get_by_label("On how many consecutive days").fill("2")
    await page.get_by_role("button", name="Add slots").click()
    await expect(page.get_by_test_id("slot-list").get_by_text("free")).to_have_count(2)
    await expect(page.get_by_test_id("slot-list")).to_contain_text("08:00")
    await fits_the_width(page)
    await context.close()
    # A courier has no business with capacity or KPIs.
    courier = world.headers["courier1"]
    for path in ("/kpis", "/planning/calendar", "/planning/slots"):
        response = await api.get(path, headers=courier)
        assert response.status_code == 403, (path, response.text)
    answer: Any = await api.get("/planning/slots?site=CTA", headers=world.headers["coord"])
    assert answer.status_code == 404


def test_kpi_charts_leave_room_for_their_labels_and_describe_themselves():
    import re as _re

    from backend.web.planning_charts import bar_chart, spread_chart

    long_label = "Shipment to manufacturing → Manufacturing start (actual)"
    svg = bar_chart("Legs", [(long_label, 22.0), ("short", None)])
    anchor = int(_re.search(r'<text x="(\d+)"[^>]*text-anchor="end"', svg).group(1))  # type: ignore[union-attr]
    assert anchor >= 8 * len(long_label)
    assert "<title>Legs</title>" in svg
    assert f"{long_label}: 22.0; short: no data" in svg
    assert "nothing to show yet" in spread_chart("Vein to vein", [])


async def test_planning_pages_have_no_serious_wcag_violation(
    server: str, api: httpx.AsyncClient, browser: Browser
):
    world = await build_world(api)
    await capacity(world, 1, ["S1", "S2"])
    (slot,) = await slots(world, day_ahead(4), "08:00")
    coi = await ordered_case(world)
    await world.ok("coord", "POST", f"/api/v1/cases/{coi}/booking", 201, json={"slot_id": slot})
    pending = await ordered_case(world, accept=False)
    pages = {
        "coord": [f"/cases/{coi}", f"/cases/{pending}", "/planning/slots", "/planning/orders", "/kpis"],
        "mfg": ["/planning/calendar", "/planning/calendar?view=month", "/planning/orders"],
    }
    found: dict[str, list[str]] = {}
    for username, paths in pages.items():
        # The pages allow only their own scripts: axe is let in by switching CSP off for the test.
        context, page = await signed_in(browser, server, username, bypass_csp=True)
        for path in paths:
            response = await page.goto(path)
            assert response is not None
            assert response.status == 200, path
            await page.wait_for_load_state("networkidle")
            violations = await axe_violations(page)
            if violations:
                found[path] = violations
        await context.close()
    assert found == {}, "\n".join(f"{where}: {v}" for where, vs in found.items() for v in vs)
