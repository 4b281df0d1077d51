"""Each role doing its work in a real headless Chromium (Debian's, driven by Playwright) against a real
backend process and PostgreSQL: the coordinator sees an excursion arrive live and acknowledges it, the
pharmacist receives a shipment and signs, a courier on a phone hands over a shipment by scanning its
label with the camera (Chromium's fake capture playing the label), online and offline, and the bedside
check. Screenshots of every page at desktop and phone size are saved under artifacts/web/."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from firmware_bridge.ingest_contract import (
    CONTENT_TYPE,
    INGEST_PATH,
    IngestBatch,
    IngestReading,
    encode_batch,
)
from tests.integration.helpers import make_user
from tests.integration.journey import PASSWORD, World, starting_material_at_manufacturing, stored_bag
from tests.web.browser_support import (
    CHROMIUM,
    PHONE,
    label_video,
    launch,
    no_horizontal_overflow,
    signed_in,
)

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)"
)


async def shipment_in_transit(world: World, logger_id: str | None = None) -> tuple[str, str, str]:
    coi = await world.new_case()
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph], logger_id=logger_id)
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    return coi, aph, ship


async def ingest(api: httpx.AsyncClient, bridge: dict[str, str], logger_id: str, temps: list[float]) -> None:
    now = datetime.now(UTC)
    readings = [
        IngestReading(
            logger_id=logger_id, ts=now + timedelta(milliseconds=100 * i), temp_c=t, received_at=now
        )
        for i, t in enumerate(temps)
    ]
    batch = IngestBatch(
        batch_id=uuid.uuid4().hex, bridge_id="web-test", readings=readings, statuses=[], dead_letters=[]
    )
    response = await api.post(
        INGEST_PATH, content=encode_batch(batch), headers={**bridge, "Content-Type": CONTENT_TYPE}
    )
    assert response.status_code == 200, response.text


async def test_coordinator_sees_an_excursion_arrive_live_and_acknowledges_it(
    server, api, world, chromium, shots
):
    root = world.headers["admin"]
    bridge = await make_user(api, root, "bridge-web", ["bridge"], ["USZ-APH"])
    due = (date.today() + timedelta(days=300)).isoformat()
    await world.ok(
        "admin",
        "POST",
        "/api/v1/loggers",
        201,
        json={
            "id": "LGR-WEB1",
            "owner_site": "USZ-APH",
            "calibration_due": due,
            "issue_broker_password": False,
        },
    )
    coi, _, ship = await shipment_in_transit(world, logger_id="LGR-WEB1")
    await ingest(api, bridge, "LGR-WEB1", [5.0, 5.2])

    browser = await launch(chromium)
    _context, page = await signed_in(browser, server, "coord")
    await expect(page).to_have_url(f"{server}/board")
    row = page.locator(f'tr[data-shipment="{ship}"]')
    await expect(row).to_contain_text("in transit")
    await expect(row.get_by_test_id("temp")).to_contain_text("5.2 °C")
    await expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    await page.evaluate("window.__notReloaded = true")
    await page.screenshot(path=shots / "board-desktop.png", full_page=True)

    # The logger in the box reports 18-20 °C, beyond the fresh profile's critical 15 °C.
    await ingest(api, bridge, "LGR-WEB1", [18.0, 19.5, 20.0])
    await expect(row.locator(".sev.critical")).to_be_visible()
    await expect(row.get_by_test_id("temp")).to_contain_text("high")
    assert await page.evaluate("window.__notReloaded === true"), "the board reloaded instead of updating live"
    await page.screenshot(path=shots / "board-excursion-desktop.png", full_page=True)

    await row.locator("a.alerts-link").click()
    await expect(page).to_have_url(f"{server}/alerts#shipment-{ship}")
    alert = page.locator(f'li[data-shipment="{ship}"]').filter(has=page.locator(".sev.critical")).first
    await expect(alert.locator(".alert-status")).to_have_text("open")
    await page.screenshot(path=shots / "alerts-desktop.png", full_page=True)
    await alert.get_by_label("Comment").fill("Courier told to check the lid; replacement shipper on its way")
    await alert.get_by_role("button", name="Acknowledge").click()
    await expect(page.locator(f'li[data-shipment="{ship}"] .alert-status').first).to_have_text("acknowledged")
    alerts = await world.ok("coord", "GET", f"/api/v1/alerts?shipment_id={ship}&status=acknowledged")
    assert any(
        a["ack_comment"].startswith("Courier told") and a["acknowledged_by"] == "coord" for a in alerts
    )

    await page.goto(f"/shipments/{ship}")
    await expect(page.locator("svg.chart rect.excursion").first).to_be_attached()
    await expect(page.get_by_test_id("chain")).to_contain_text("Chain verified")
    await page.screenshot(path=shots / "shipment-desktop.png", full_page=True)
    await page.goto(f"/cases/{coi}")
    await page.screenshot(path=shots / "case-desktop.png", full_page=True)
    await browser.close()


async def test_pharmacist_receives_a_shipment_with_a_wedge_scanner_and_signs(server, world, chromium, shots):
    coi, _, _ = await starting_material_at_manufacturing(world)
    prc = await world.unit("mfg", coi, "PRC", "CTA")
    await world.scan_ok("mfg", "label", "CTA", prc)
    await world.ok("qa", "POST", f"/api/v1/units/{prc}/release", 201, json={"password": PASSWORD})
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship, prc)
    await world.scan_ok("courier2", "pickup", "CTA", ship)

    browser = await launch(chromium)
    _context, page = await signed_in(browser, server, "pharm")
    await expect(page).to_have_url(f"{server}/receipt")
    await page.get_by_role("link", name=ship).click()
    scan = page.locator("#scan-input")
    await expect(scan).to_be_focused()
    # A keyboard-wedge scanner types the code and Enter into whatever has the focus.
    await page.keyboard.type(ship + "\n", delay=5)
    await expect(page.locator(f'#items li[data-item="{ship}"]')).to_have_class("done")
    await page.get_by_label("Seals intact").check()  # a click moves the focus to the checkbox ...
    await expect(page.get_by_label("Seals intact")).to_be_focused()  # ... and the page leaves it there
    # A wedge scan right after the click: every character reaches the scan field, none ticks the box.
    await page.keyboard.type(prc + "\n", delay=5)
    await expect(page.locator(f'#items li[data-item="{prc}"]')).to_have_class("done")
    await expect(page.get_by_label("Seals intact")).to_be_checked()
    await expect(page.locator("#scan-result")).to_contain_text("✔")
    await page.get_by_label("Shipper intact").check()
    await page.get_by_label("Temperature reviewed").check()
    await page.screenshot(path=shots / "receipt-desktop.png", full_page=True)
    await page.get_by_label("Your password, to sign").fill("wrong password")
    await page.get_by_role("button", name="Accept and sign").click()
    await expect(page.locator("#decision-error")).to_be_visible()
    await page.get_by_label("Your password, to sign").fill(PASSWORD)
    await page.get_by_role("button", name="Accept and sign").click()
    await expect(page.locator("#banner")).to_contain_text("received and verified")
    # Signed: who decided what and when, no live buttons, no error left from the wrong password.
    decided = page.get_by_test_id("decided")
    await expect(decided).to_contain_text("received and verified")
    await expect(decided).to_contain_text("Pharm")
    await expect(decided).to_contain_text("Shipper intact: yes")
    await expect(page.get_by_role("button", name="Accept and sign")).to_have_count(0)
    await expect(page.locator("#decision-error")).to_have_count(0)
    shipment = await world.ok("pharm", "GET", f"/api/v1/shipments/{ship}")
    assert shipment["status"] == "received"
    timeline = await world.ok("pharm", "GET", f"/api/v1/cases/{coi}/timeline")
    signed = [e for e in timeline["events"] if e.get("signatures")]
    assert any(s["meaning"] == "received and verified" for e in signed for s in e["signatures"])
    await browser.close()


async def test_courier_hands_over_by_camera_online_and_offline(server, api, world, chromium, shots, tmp_path):
    coi = await world.new_case()
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    png = await world.call("coord", "GET", f"/api/v1/labels/shipment/{ship}.png")
    assert png.status_code == 200
    video = label_video(png.content, tmp_path / "label.y4m")

    browser = await launch(chromium, video)
    context, page = await signed_in(browser, server, "courier1", phone=True)
    await expect(page).to_have_url(f"{server}/courier")
    await no_horizontal_overflow(page)
    await page.screenshot(path=shots / "courier-phone.png", full_page=True)
    # The service worker that keeps the page for offline use is in charge before going offline.
    await page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null")

    # Online: pick-up at the apheresis unit, by pointing the camera at the label.
    await page.get_by_label("At site").select_option("USZ-APH")
    await page.get_by_role("button", name="Scan with camera").click()
    await expect(page.locator("#done li.ok")).to_have_count(1)
    picked = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}")
    assert picked["status"] == "in_transit"
    assert picked["holder"] == "Courier1"
    await page.screenshot(path=shots / "courier-scanned-phone.png", full_page=True)

    # Offline at the depot: the hand-over photo is kept on the phone...
    await context.set_offline(True)
    await page.get_by_role("radio", name="Hand over").check()
    # The receivers of the shipment picked up were kept on the phone: chosen from the list offline too.
    await page.get_by_role("radio", name=re.compile("^Courier2")).check()
    await page.get_by_label("At site").select_option("CRX")
    await expect(page.locator("#net")).to_have_attribute("data-online", "false")
    await page.get_by_role("button", name="Capture label (offline)").click()
    await expect(page.locator("#queue-count")).to_have_text("1")
    # Reloaded offline, the page comes from its service worker, with the scan still queued.
    reloaded = await page.reload()
    assert reloaded is not None
    assert reloaded.from_service_worker
    await expect(page.locator("#queue-count")).to_have_text("1")
    stored = await page.evaluate(
        """() => new Promise((resolve) => {
            const open = indexedDB.open("celltrail-courier-courier1", 1);
            open.onsuccess = () => {
                const all = open.result.transaction("scans").objectStore("scans").getAll();
                all.onsuccess = () =>
                    resolve(all.result.map((s) => [s.idempotency_key, s.action, !!s.frame]));
            };
        })"""
    )
    assert len(stored) == 1
    assert stored[0][1:] == ["handover", True]
    await no_horizontal_overflow(page)
    await page.screenshot(path=shots / "courier-offline-phone.png", full_page=True)
    still = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}")
    assert still["pending_handover"] is None  # nothing reached the server while offline

    # ... and sent, with its idempotency key, once the phone is back online.
    await context.set_offline(False)
    # The page was reloaded since the pick-up: its list of what was recorded starts again.
    await expect(page.locator("#done li.ok")).to_have_count(1)
    await expect(page.locator("#queue-count")).to_have_text("0")
    handed = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}")
    assert handed["pending_handover_to"] == "courier2"
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    actions = [e["action"] for e in timeline["events"] if e.get("shipment_id") == ship]
    assert actions.count("handover") == 1
    assert actions.count("pickup") == 1
    await browser.close()


async def test_bedside_shows_stop_for_another_patients_bag_and_match_then_two_signatures(
    server, world, chromium, shots
):
    coi, _, _ = await starting_material_at_manufacturing(world)
    prc = await world.unit("mfg", coi, "PRC", "CTA")
    await world.scan_ok("mfg", "label", "CTA", prc)
    await world.ok("qa", "POST", f"/api/v1/units/{prc}/release", 201, json={"password": PASSWORD})
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship, prc)
    await world.scan_ok("courier2", "pickup", "CTA", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship, prc)
    checklist = {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True}
    await world.ok(
        "pharm",
        "POST",
        f"/api/v1/shipments/{ship}/receipt",
        201,
        json={"decision": "accept", "password": PASSWORD, "checklist": checklist},
    )
    await world.scan_ok("pharm", "store", "USZ", prc, storage_location="LN2 tank 2")
    await world.scan_ok("pharm", "dispense", "USZ", prc)
    await world.scan_ok("pharm", "thaw", "USZ", prc)
    wristband = (await world.ok("pharm", "GET", f"/api/v1/cases/{coi}"))["barcode"]
    other = await world.new_case()
    other_wristband = (await world.ok("pharm", "GET", f"/api/v1/cases/{other}"))["barcode"]

    browser = await launch(chromium)
    _context, page = await signed_in(browser, server, "pharm", phone=True)
    await page.goto("/bedside")
    await no_horizontal_overflow(page)
    await page.screenshot(path=shots / "bedside-phone.png", full_page=True)
    scan = page.locator("#scan-input")
    await scan.fill(other_wristband)
    await scan.press("Enter")
    await expect(page.locator("#step-wristband")).to_have_class("done")
    await scan.fill(prc)
    await scan.press("Enter")
    await expect(page.locator("#verdict-word")).to_have_text("STOP")
    await expect(page.locator("#verdict-detail")).to_contain_text("different patients")
    await page.screenshot(path=shots / "bedside-stop-phone.png")
    # The STOP is a refusal in the chain of each case involved, and a critical alert for each.
    for case in (coi, other):
        timeline = await world.ok("pharm", "GET", f"/api/v1/cases/{case}/timeline")
        stops = [e for e in timeline["events"] if e["action"] == "bedside_verify"]
        assert [(e["outcome"], e["refusal"]) for e in stops] == [("refused", "coi_mismatch")], case
        alerts = await world.ok("pharm", "GET", "/api/v1/alerts", params={"coi": case})
        assert [a["severity"] for a in alerts if a["kind"] == "coi_mismatch"] == ["critical"], case
    await page.get_by_role("button", name="Continue").click()

    await scan.fill(wristband)
    await scan.press("Enter")
    await scan.fill(prc)
    await scan.press("Enter")
    await expect(page.locator("#verdict-word")).to_have_text("MATCH")
    await expect(page.locator("#camera")).to_be_hidden()
    await page.screenshot(path=shots / "bedside-match-phone.png")
    await page.get_by_role("button", name="Continue").click()
    form = page.locator("#signatures")
    await form.locator("input[name=p1]").fill(PASSWORD)
    await form.locator("input[name=u2]").fill("pharm2")
    await form.locator("input[name=p2]").fill(PASSWORD)
    await page.get_by_role("button", name="Sign and record infusion").click()
    await expect(page.locator("#banner")).to_contain_text("infused")
    unit = await world.ok("pharm", "GET", f"/api/v1/units/{prc}")
    assert unit["status"] == "infused"
    await browser.close()


async def test_every_page_fits_a_phone_and_a_desktop(server, world, chromium, shots):
    coi, _, ship = await shipment_in_transit(world)
    pages = {
        "coord": ["/board", f"/shipments/{ship}", f"/cases/{coi}", "/alerts"],
        "mfg": ["/receipt", f"/receipt/{ship}"],
        "courier1": ["/courier"],
        "pharm": ["/bedside", "/pharmacy"],
    }
    browser = await launch(chromium)
    for phone in (False, True):
        size = "phone" if phone else "desktop"
        for username, paths in pages.items():
            context, page = await signed_in(browser, server, username, phone=phone)
            for path in paths:
                response = await page.goto(path)
                assert response is not None
                assert response.status == 200, path
                if phone:
                    await no_horizontal_overflow(page)
                name = path.strip("/").replace("/", "-").replace(ship, "shipment").replace(coi, "case")
                await page.screenshot(path=shots / f"page-{name}-{size}.png", full_page=True)
            await context.close()
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    await page.goto(f"{server}/login")
    await no_horizontal_overflow(page)
    await page.screenshot(path=shots / "page-login-phone.png", full_page=True)
    await browser.close()


async def test_bedside_stop_for_a_bag_not_yet_thawed_is_recorded_and_alerted(server, world, chromium):
    coi, _, _ = await starting_material_at_manufacturing(world)
    prc = await world.unit("mfg", coi, "PRC", "CTA")
    await world.scan_ok("mfg", "label", "CTA", prc)
    await world.ok("qa", "POST", f"/api/v1/units/{prc}/release", 201, json={"password": PASSWORD})
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship, prc)
    await world.scan_ok("courier2", "pickup", "CTA", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship, prc)
    checklist = {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True}
    await world.ok(
        "pharm",
        "POST",
        f"/api/v1/shipments/{ship}/receipt",
        201,
        json={"decision": "accept", "password": PASSWORD, "checklist": checklist},
    )
    wristband = (await world.ok("pharm", "GET", f"/api/v1/cases/{coi}"))["barcode"]

    browser = await launch(chromium)
    _context, page = await signed_in(browser, server, "pharm", phone=True)
    await page.goto("/bedside")
    scan = page.locator("#scan-input")
    await scan.fill(wristband)
    await scan.press("Enter")
    await scan.fill(prc)
    await scan.press("Enter")
    await expect(page.locator("#verdict-word")).to_have_text("STOP")
    await expect(page.locator("#verdict-detail")).to_contain_text("not thawed")
    timeline = await world.ok("pharm", "GET", f"/api/v1/cases/{coi}/timeline")
    stops = [e for e in timeline["events"] if e["action"] == "bedside_verify"]
    assert [(e["outcome"], e["refusal"]) for e in stops] == [("refused", "not_infusable")]
    alerts = await world.ok("pharm", "GET", "/api/v1/alerts", params={"coi": coi})
    assert [a["severity"] for a in alerts if a["kind"] == "bedside_stop"] == ["critical"]
    await browser.close()


async def test_a_receipt_completed_with_the_keyboard_alone(server, world, chromium, shots):
    _, aph, ship = await shipment_in_transit(world)
    browser = await launch(chromium)
    _context, page = await signed_in(browser, server, "mfg")
    await page.goto(f"/receipt/{ship}")
    scan = page.locator("#scan-input")
    await expect(scan).to_be_focused()
    await page.keyboard.type(ship + "\n", delay=5)
    await expect(page.locator(f'#items li[data-item="{ship}"]')).to_have_class("done")
    await page.keyboard.type(aph + "\n", delay=5)
    await expect(page.locator(f'#items li[data-item="{aph}"]')).to_have_class("done")

    async def tab_to(locator: Any, limit: int = 40) -> None:
        for _ in range(limit):
            await page.keyboard.press("Tab")
            if await locator.evaluate("el => el === document.activeElement"):
                return
        raise AssertionError(f"Tab never reached {locator}")

    # Every checklist item with Tab and Space; the page leaves the focus where the keyboard put it.
    for name in ("Seals intact", "Shipper intact", "Temperature reviewed"):
        box = page.get_by_label(name)
        await tab_to(box)
        await page.keyboard.press("Space")
        await expect(box).to_be_checked()
        await page.wait_for_timeout(1200)  # longer than any focus-taking timer would wait
        await expect(box).to_be_focused()
    await tab_to(page.get_by_label("Comment"))
    await page.keyboard.type("Lid seal slightly loose; contents fine")
    await tab_to(page.get_by_label("Your password, to sign"))
    await page.keyboard.type(PASSWORD)
    quarantine = page.get_by_role("button", name="Quarantine and sign")
    await tab_to(quarantine)
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("decided")).to_contain_text("quarantined")
    await expect(page.get_by_test_id("decided")).to_contain_text("Lid seal slightly loose")
    await page.screenshot(path=shots / "receipt-keyboard-desktop.png", full_page=True)
    # Escape brings the focus back to the scan field.
    await page.keyboard.press("Escape")
    await expect(scan).to_be_focused()
    shipment = await world.ok("mfg", "GET", f"/api/v1/shipments/{ship}")
    assert shipment["status"] == "quarantined"
    await browser.close()


async def test_a_courier_hands_over_to_a_receiver_chosen_from_the_list(server, world, chromium, tmp_path):
    coi = await world.new_case()
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    png = await world.call("coord", "GET", f"/api/v1/labels/shipment/{ship}.png")
    video = label_video(png.content, tmp_path / "label.y4m")

    browser = await launch(chromium, video)
    _context, page = await signed_in(browser, server, "courier1", phone=True)
    await page.get_by_role("radio", name="Hand over").check()
    await page.get_by_role("button", name="Scan with camera").click()
    # The label is read; the hand-over waits for the receiver, and the site is the destination's.
    await expect(page.locator("#handover-what")).to_contain_text(ship)
    await expect(page.get_by_label("At site")).to_have_value("CTA")
    receivers = page.locator("#receivers")
    await expect(receivers.get_by_role("radio", name=re.compile("^Courier2"))).to_be_visible()
    await expect(receivers.get_by_role("radio", name=re.compile("^Mfg"))).to_be_visible()
    await expect(receivers.get_by_role("radio", name=re.compile("^Pharm"))).to_have_count(0)
    await expect(page.get_by_role("button", name="Record hand-over")).to_be_disabled()
    await page.wait_for_timeout(1500)  # the label stays in view: still nothing is recorded
    assert (await world.ok("coord", "GET", f"/api/v1/shipments/{ship}"))["pending_handover"] is None
    await no_horizontal_overflow(page)
    await receivers.get_by_role("radio", name=re.compile("^Courier2")).check()
    await page.get_by_role("button", name="Record hand-over").click()
    await expect(page.locator("#done li.ok")).to_have_count(1)
    handed = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}")
    assert handed["pending_handover_to"] == "courier2"
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    handovers = [e for e in timeline["events"] if e["action"] == "handover"]
    assert [(e["outcome"], e["site"]) for e in handovers] == [("accepted", "CTA")]
    await browser.close()


async def test_a_new_alert_in_the_background_is_counted_in_the_title(server, world, chromium):
    _coi, _, ship = await shipment_in_transit(world)
    browser = await launch(chromium)
    _context, page = await signed_in(browser, server, "coord")
    await expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    await expect(page.get_by_role("button", name="Alert sound off")).to_be_visible()
    # The page goes to the background (another tab in front).
    await page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    refused = await world.scan("courier1", "pack", "CTA", ship)  # a refused step opens an alert
    assert refused.status_code >= 400
    await expect(page).to_have_title(re.compile(r"^\(1\) "))
    await page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    await expect(page).to_have_title(re.compile(r"^Live board"))
    await browser.close()


async def test_the_board_flags_only_the_row_that_changed(server, world, chromium):
    _, _, first = await shipment_in_transit(world)
    _, _, second = await shipment_in_transit(world)
    browser = await launch(chromium)
    _context, page = await signed_in(browser, server, "coord")
    await expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    refused = await world.scan("courier1", "pack", "CTA", second)  # an alert on the second shipment
    assert refused.status_code >= 400
    await expect(page.locator(f'tr[data-shipment="{second}"]')).to_have_class(re.compile(r"\bchanged\b"))
    await expect(page.locator(f'tr[data-shipment="{first}"]')).not_to_have_class(re.compile(r"\bchanged\b"))
    await browser.close()


async def test_the_pharmacy_page_stores_dispenses_and_thaws_with_a_running_timer(
    server, world, chromium, shots
):
    _coi, prc = await stored_bag(world)
    browser = await launch(chromium)
    _context, page = await signed_in(browser, server, "pharm", phone=True)
    await page.goto("/pharmacy")
    row = page.locator(f'tr[data-unit="{prc}"]')
    await expect(row).to_contain_text("LN2-1")
    await row.get_by_label("Store at").fill("LN2 tank 2, rack B")
    await row.get_by_role("button", name="Move").click()
    await expect(page.locator(f'tr[data-unit="{prc}"]')).to_contain_text("LN2 tank 2, rack B")
    await page.locator(f'tr[data-unit="{prc}"]').get_by_role("button", name="Dispense").click()
    dispensed = page.locator(f'li[data-unit="{prc}"]')
    await expect(dispensed).to_contain_text(prc)
    await dispensed.get_by_role("button", name="Start thaw").click()
    timer = page.locator(f'li[data-unit="{prc}"] .timer')
    await expect(timer).to_have_text(re.compile(r"^00 min 0\d s$"))
    first = await timer.text_content()
    await expect(timer).not_to_have_text(first or "")  # it runs
    await no_horizontal_overflow(page)
    await page.screenshot(path=shots / "pharmacy-phone.png", full_page=True)
    unit = await world.ok("pharm", "GET", f"/api/v1/units/{prc}")
    assert unit["status"] == "thawed"
    await browser.close()
