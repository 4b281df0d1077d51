"""Label files from the API read back as the right codes; every print (POST) is recorded, reprints
flagged, while a download (GET) records nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
from PIL import Image
from pyzbar import pyzbar

from tests.integration.journey import build_world


def decoded(png: bytes) -> set[str]:
    image = np.array(Image.open(io.BytesIO(png)).convert("L"))
    return {symbol.data.decode() for symbol in pyzbar.decode(image)}


async def test_bag_label_reads_back_and_reprints_are_flagged(client):
    world = await build_world(client)
    coi = await world.new_case()
    expiry = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    unit = (
        await world.ok(
            "nurse",
            "POST",
            f"/api/v1/cases/{coi}/units",
            201,
            json={"kind": "APH", "product": "Apheresis", "site": "USZ-APH", "expires_at": expiry},
        )
    )["id"]

    first = await world.call("nurse", "POST", f"/api/v1/labels/bag/{unit}.png")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/png"
    codes = decoded(first.content)
    assert f"&/{coi}" in codes  # the ISBT 128 COI exactly as the standard writes it
    assert any(unit in code for code in codes)

    second = await world.call("nurse", "POST", f"/api/v1/labels/bag/{unit}.pdf")
    assert second.content.startswith(b"%PDF")
    download = await world.call("nurse", "GET", f"/api/v1/labels/bag/{unit}.pdf")
    assert download.content.startswith(b"%PDF")  # read-only: not a print, not in the chain
    zpl = await world.call("nurse", "POST", f"/api/v1/labels/bag/{unit}.zpl")
    assert zpl.text.startswith("^XA")
    assert "^BC" in zpl.text  # native Code 128, not a bitmap
    assert f"CT1:UNIT:{unit}" in zpl.text

    events = (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["events"]
    prints = [e for e in events if e["action"] == "label_print"]
    assert [(p["data"]["format"], p["data"]["repeat"], p["data"]["copy"]) for p in prints] == [
        ("png", False, 1),
        ("pdf", True, 2),
        ("zpl", True, 3),
    ]
    assert prints[1]["detail"].startswith("reprinted")
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True


async def test_wristband_and_shipment_labels(client):
    world = await build_world(client)
    coi = await world.new_case()
    unit = await world.unit("nurse", coi, "APH", "USZ-APH")
    shipment = await world.shipment("coord", coi, "USZ-APH", "CTA", [unit])
    wristband = await world.call("pharm", "GET", f"/api/v1/labels/wristband/{coi}.png")
    assert wristband.status_code == 200, wristband.text
    assert f"&/{coi}" in decoded(wristband.content)
    label = await world.call("coord", "GET", f"/api/v1/labels/shipment/{shipment}.png")
    assert label.status_code == 200, label.text
    assert any(shipment in code for code in decoded(label.content))


async def test_label_errors_are_clear(client):
    world = await build_world(client)
    coi = await world.new_case()
    unit = await world.unit("nurse", coi, "APH", "USZ-APH")
    no_expiry = await world.call("nurse", "GET", f"/api/v1/labels/bag/{unit}.png")
    assert no_expiry.status_code == 409
    assert "expiry" in no_expiry.json()["detail"]
    assert (await world.call("nurse", "GET", f"/api/v1/labels/bag/{unit}.gif")).status_code == 404
    assert (await world.call("nurse", "GET", f"/api/v1/labels/sticker/{unit}.png")).status_code == 404
    bad = await world.call("nurse", "GET", "/api/v1/labels/bag/CHXXXX-PRC-01.png")
    assert bad.status_code == 422
    assert (await world.call("courier1", "GET", f"/api/v1/labels/bag/{unit}.png")).status_code == 403


async def test_a_bag_label_prints_the_product_code_lot_and_volume_registered_with_the_bag(client):
    world = await build_world(client)
    coi = await world.new_case()
    expiry = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    body = {
        "kind": "APH",
        "product": "Apheresis",
        "site": "USZ-APH",
        "expires_at": expiry,
        "product_code": "S1395V00",
        "lot": "L2026-0042",
        "volume": "68 mL",
    }
    unit = await world.ok("nurse", "POST", f"/api/v1/cases/{coi}/units", 201, json=body)
    assert (unit["product_code"], unit["lot"], unit["volume"]) == ("S1395V00", "L2026-0042", "68 mL")
    zpl = (await world.call("nurse", "GET", f"/api/v1/labels/bag/{unit['id']}.zpl")).text
    for printed in ("L2026-0042", "68 mL", "S1395V00"):
        assert printed in zpl, printed
    # Recorded with the registration, so the record says what the label printed.
    events = (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["events"]
    registered = next(e for e in events if e["action"] == "unit_registered")
    assert registered["data"]["lot"] == "L2026-0042"
    # A product code that is no ISBT 128 product code is refused at registration.
    bad = await world.call("nurse", "POST", f"/api/v1/cases/{coi}/units", json=body | {"product_code": "XYZ"})
    assert bad.status_code == 400, bad.text
