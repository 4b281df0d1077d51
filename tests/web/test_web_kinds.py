"""Investigational cases and biobank samples on the pages: the case page names the trial (register,
protocol, trial site number, subject identifier, sponsor) and the investigational statement, never patient
identity; it lists the case's samples with their storage position and consent; the board, pharmacy stock
and receipt desk mark a trial case with a badge whose text says what it means. Over HTTP, then in
Chromium at a 360 px phone (no sideways scrolling, the samples reached with the keyboard, no serious
WCAG 2.2 AA violation)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.integration.journey import World, build_world, stored_bag
from tests.web.browser_support import CHROMIUM, axe_violations, launch, no_horizontal_overflow, signed_in
from tests.web.test_web_pages import sign_in

TRIAL = {
    "register": "2024-512345-12-00",
    "protocol": "CARTALPHA-01",
    "site_number": "CH-03",
    "subject": "03-0017",
    "sponsor": "Celltrail Academic Network",
}
SAMPLE = {"description": "patient EDTA blood", "site": "USZ-APH", "consent_ref": "BB-CONSENT-2026-0042"}
POSITION = {"site": "USZ-APH", "freezer": "F-80-2", "rack": "3", "box": "12", "position": "A4"}
BADGE = "investigational medicinal product, clinical trial case"
STATEMENT = "FOR CLINICAL TRIAL USE ONLY"

browser_only = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)"
)


async def trial_case(world: World, therapy: str = "CAR-T (investigational)") -> str:
    case = await world.ok(
        "coord",
        "POST",
        "/api/v1/cases",
        201,
        json={"treatment_site": "USZ", "therapy": therapy, "trial": TRIAL},
    )
    return str(case["coi"])


def trial_world(world: World) -> World:
    """The journey's helpers open trial cases in this world."""

    async def new_case(therapy: str = "CAR-T (investigational)") -> str:
        return await trial_case(world, therapy)

    world.new_case = new_case  # type: ignore[method-assign]
    return world


async def in_transit(world: World, coi: str) -> tuple[str, str]:
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    return aph, ship


async def stored_sample(world: World, coi: str) -> str:
    unit = await world.ok("nurse", "POST", f"/api/v1/cases/{coi}/samples", 201, json=SAMPLE)
    sample = str(unit["id"])
    await world.scan_ok("nurse", "label", "USZ-APH", sample)
    await world.ok("nurse", "POST", f"/api/v1/units/{sample}/storage", 201, json=POSITION)
    return sample


def text_of(page: str) -> str:
    """The page's words, tags dropped and white space folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def row_of(page: str, marker: str) -> str:
    """The table row or list item that holds `marker`."""
    for row in re.findall(r"<(?:tr|li)\b.*?</(?:tr|li)>", page, flags=re.S):
        if marker in row:
            return str(row)
    raise AssertionError(f"no row with {marker}")


async def test_the_case_page_names_the_trial_and_lists_the_samples(client: Any) -> None:
    world = await build_world(client)
    coi = await trial_case(world)
    sample = await stored_sample(world, coi)
    ordinary = await world.new_case()
    await sign_in(client, "coord")
    page = await client.get(f"/cases/{coi}")
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    for needle in (
        f"Clinical trial {TRIAL['register']}",
        f"Protocol {TRIAL['protocol']}",
        f"Trial site number {TRIAL['site_number']}",
        f"Subject {TRIAL['subject']}",
        f"Sponsor {TRIAL['sponsor']}",
        STATEMENT,
        BADGE,
    ):
        assert needle in text, needle
    # A trial case is identified by its subject identifier alone: no patient line at all.
    assert "Patient" not in text
    assert "shown only at the treatment site" not in text
    row = text_of(row_of(page.text, f'data-unit="{sample}"'))
    for needle in (
        sample,
        "research sample",
        SAMPLE["description"],
        "USZ-APH · freezer F-80-2 / rack 3 / box 12 / position A4",
        SAMPLE["consent_ref"],
        "stored",
    ):
        assert needle in row, (needle, row)
    # An ordinary case: no trial, no statement, no samples section.
    plain = text_of((await client.get(f"/cases/{ordinary}")).text)
    assert "Clinical trial" not in plain
    assert STATEMENT not in plain
    assert BADGE not in plain
    assert "Biobank samples" not in plain
    assert "Patient MRN-0042" in plain


async def test_lists_mark_a_trial_case(client: Any) -> None:
    world = await build_world(client)
    coi = await trial_case(world)
    _aph, ship = await in_transit(world, coi)
    other = await world.new_case()
    _other_aph, other_ship = await in_transit(world, other)
    await sign_in(client, "coord")
    for path in ("/board", "/board/rows"):
        board = (await client.get(path)).text
        assert BADGE in text_of(row_of(board, f'data-shipment="{ship}"')), path
        assert BADGE not in text_of(row_of(board, f'data-shipment="{other_ship}"')), path
    await sign_in(client, "mfg")
    desk = (await client.get("/receipt")).text
    assert BADGE in text_of(row_of(desk, f"/receipt/{ship}"))
    assert BADGE not in text_of(row_of(desk, f"/receipt/{other_ship}"))
    assert BADGE in text_of((await client.get(f"/receipt/{ship}")).text)
    assert BADGE not in text_of((await client.get(f"/receipt/{other_ship}")).text)


async def test_pharmacy_stock_marks_a_trial_bag(client: Any) -> None:
    world = await build_world(client)
    _plain_coi, plain_bag = await stored_bag(world)
    _coi, bag = await stored_bag(trial_world(world))
    await sign_in(client, "pharm")
    stock = (await client.get("/pharmacy")).text
    assert BADGE in text_of(row_of(stock, f'data-unit="{bag}"'))
    assert BADGE not in text_of(row_of(stock, f'data-unit="{plain_bag}"'))


@browser_only
async def test_the_trial_case_page_on_a_phone(server: str, world: World, chromium: Any) -> None:
    coi = await trial_case(world)
    sample = await stored_sample(world, coi)
    _aph, ship = await in_transit(world, coi)
    browser = await launch(chromium)
    context, page = await signed_in(browser, server, "coord", phone=True, bypass_csp=True)
    await page.goto(f"/cases/{coi}")
    await expect(page.get_by_test_id("investigational-statement")).to_contain_text(STATEMENT)
    await expect(page.get_by_test_id("trial-subject")).to_contain_text(TRIAL["subject"])
    await expect(page.get_by_text(BADGE)).to_have_count(1)
    await no_horizontal_overflow(page)
    # The samples' table scrolls within its own region, which the keyboard reaches.
    region = page.get_by_role("region", name="Biobank samples")
    for _ in range(60):
        await page.keyboard.press("Tab")
        if await region.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the samples")
    await expect(region.locator(f'tr[data-unit="{sample}"]')).to_contain_text(POSITION["freezer"])
    assert await axe_violations(page) == []
    await page.goto("/board")
    await expect(page.locator(f'tr[data-shipment="{ship}"] [data-testid="trial-badge"]')).to_be_visible()
    await no_horizontal_overflow(page)
    assert await axe_violations(page) == []
    await context.close()
    await browser.close()
