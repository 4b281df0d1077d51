"""axe-core (the copy the pinned axe-playwright-python package ships, injected into the page: nothing is
downloaded) with the WCAG 2.0, 2.1 and 2.2 A and AA rules on every page, at a 360 px phone and a
desktop: no critical or serious violation anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.journey import World
from tests.web.browser_support import CHROMIUM, axe_violations, launch, signed_in

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)"
)


async def shipment_in_transit(world: World) -> tuple[str, str]:
    coi = await world.new_case()
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    return coi, ship


async def test_no_page_has_a_critical_or_serious_wcag_22_aa_violation(server, world, chromium):
    coi, ship = await shipment_in_transit(world)
    # A refused scan, so the pages also show a refusal, an alert and its forms.
    await world.scan("courier1", "pack", "CTA", ship)
    pages = {
        "coord": ["/board", f"/shipments/{ship}", f"/cases/{coi}", "/alerts"],
        "mfg": ["/receipt", f"/receipt/{ship}"],
        "courier1": ["/courier"],
        "pharm": ["/bedside", "/pharmacy"],
    }
    browser = await launch(chromium)
    found: dict[str, list[str]] = {}
    checked = 0
    for phone in (False, True):
        size = "phone" if phone else "desktop"
        for username, paths in pages.items():
            # The pages allow only their own scripts: axe is let in by switching CSP off for the test.
            context, page = await signed_in(browser, server, username, phone=phone, bypass_csp=True)
            for path in paths:
                response = await page.goto(path)
                assert response is not None
                assert response.status == 200, path
                await page.wait_for_load_state("networkidle")
                violations = await axe_violations(page)
                if violations:
                    found[f"{path} ({size})"] = violations
                checked += 1
            await context.close()
        context = await browser.new_context(viewport={"width": 360, "height": 740}, bypass_csp=True)
        page = await context.new_page()
        await page.goto(f"{server}/login")
        violations = await axe_violations(page)
        if violations:
            found[f"/login ({size})"] = violations
        checked += 1
        await context.close()
    await browser.close()
    assert checked == 2 * (1 + sum(len(p) for p in pages.values()))
    assert found == {}, "\n".join(f"{where}: {v}" for where, vs in found.items() for v in vs)
