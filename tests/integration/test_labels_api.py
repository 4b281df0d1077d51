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


# ------------------------------------------------------------------ wristband: the site's identity policy

_PATIENT = {"name": "Ottilie Wunderlich", "date_of_birth": "1968-04-17", "hospital_number": "USZ-7781234"}
_PRINTED = {"name": "Ottilie Wunderlich", "dob": "DOB 1968-04-17", "hospital-number": "HOSP NO USZ-7781234"}


async def _band(world, who: str, coi: str, **params: str):
    return await world.call(who, "GET", f"/api/v1/labels/wristband/{coi}.zpl", params=params)


async def test_the_sites_wristband_policy_decides_what_identity_the_band_prints(client, database_url):
    import asyncpg

    from tests.integration.helpers import make_site, make_user

    world = await build_world(client)
    coi = await world.new_case()
    unit = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.shipment("coord", coi, "USZ-APH", "CTA", [unit])  # the manufacturing site sees the case
    await world.ok("coord", "PUT", f"/api/v1/cases/{coi}/patient", json=_PATIENT)
    policy = f"/api/v1/sites/{'USZ'}/wristband-policy"
    assert (await world.ok("pharm", "GET", policy)) == {"fields": []}
    # Default: none, whatever the request asks for.
    asked = {"fields": "name,dob,hospital-number", "patient_name": "Mallory", "name": "1"}
    band = await _band(world, "pharm", coi, **asked)
    assert band.status_code == 200, band.text
    assert f"CT1:COI:{coi}" in band.text
    for printed in [*_PRINTED.values(), "Ottilie", "1968", "Mallory"]:
        assert printed not in band.text, printed

    # All three: the server fills them from the encrypted identity.
    assert (await world.ok("coord", "PUT", policy, json={"fields": ["hospital-number", "name", "dob"]})) == {
        "fields": ["name", "dob", "hospital-number"]
    }
    band = await _band(world, "pharm", coi)
    assert band.status_code == 200, band.text
    for printed in _PRINTED.values():
        assert printed in band.text, printed
    printed_png = await world.call("pharm", "POST", f"/api/v1/labels/wristband/{coi}.png")
    assert f"&/{coi}" in decoded(printed_png.content)

    # Name only: the request cannot add what the policy leaves out.
    await world.ok("admin", "PUT", policy, json={"fields": ["name"]})
    band = await _band(world, "coord", coi, **asked)
    assert _PRINTED["name"] in band.text
    for left_out in ("DOB", "1968-04-17", "USZ-7781234", "Mallory"):
        assert left_out not in band.text, left_out

    # Off again: nothing, and no read of the identity is needed.
    await world.ok("coord", "PUT", policy, json={"fields": []})
    band = await _band(world, "pharm", coi, **asked)
    assert "Ottilie" not in band.text

    # Every read for a band is in the audit trail with reason label printing; the chain names no one.
    conn = await asyncpg.connect(database_url)
    try:
        reads = await conn.fetch(
            "SELECT actor_name, reason, new_value->'fields' AS fields FROM audit_log "
            "WHERE action = 'patient_identity_read' AND entity_id = $1 ORDER BY id",
            coi,
        )
        chain = await conn.fetchval(
            "SELECT string_agg(e::text, '|') FROM custody_events e WHERE coi = $1", coi
        )
    finally:
        await conn.close()
    assert [(r["actor_name"], r["reason"]) for r in reads] == [
        ("pharm", "label-printing"),
        ("pharm", "label-printing"),
        ("coord", "label-printing"),
    ]
    assert "Ottilie" not in chain

    # Another site's people: the manufacturing site sees the case but may not print identity; another
    # hospital does not see the case at all; a courier may print no label.
    await world.ok("coord", "PUT", policy, json={"fields": ["name", "dob"]})
    root = world.headers["admin"]
    cta_coord = await make_user(client, root, "cta-coord", ["coordinator"], ["CTA"])
    refused = await client.get(f"/api/v1/labels/wristband/{coi}.zpl", headers=cta_coord)
    assert refused.status_code == 403, refused.text
    assert "treating site USZ" in refused.json()["detail"]
    assert "Ottilie" not in refused.text
    await make_site(client, root, "KSB")
    ksb = await make_user(client, root, "ksb-pharm", ["pharmacist"], ["KSB"])
    hidden = await client.post(f"/api/v1/labels/wristband/{coi}.zpl", headers=ksb)
    assert hidden.status_code == 404, hidden.text
    assert (await _band(world, "courier1", coi)).status_code == 403
    # Nor may they change the treating site's policy.
    for headers in (cta_coord, ksb, world.headers["pharm"]):
        answer = await client.put(policy, headers=headers, json={"fields": []})
        assert answer.status_code == 403, answer.text
    assert (await world.ok("pharm", "GET", policy)) == {"fields": ["name", "dob"]}


async def test_a_band_the_policy_requires_identity_for_is_refused_without_it(client):
    world = await build_world(client)
    coi = await world.new_case()
    policy = "/api/v1/sites/USZ/wristband-policy"
    await world.ok("coord", "PUT", policy, json={"fields": ["name", "hospital-number"]})
    missing = await _band(world, "pharm", coi)
    assert missing.status_code == 409, missing.text
    assert "no patient identity is recorded" in missing.json()["detail"]
    # Recorded without a hospital number: the policy's second identifier is missing, so no band.
    await world.ok("coord", "PUT", f"/api/v1/cases/{coi}/patient", json={"name": "Ottilie Wunderlich"})
    partial = await _band(world, "pharm", coi)
    assert partial.status_code == 422, partial.text
    assert "hospital-number" in partial.json()["detail"]
    for bad in ({"fields": ["ssn"]}, {"fields": ["name"] * 4}, {"fields": "name"}):
        answer = await world.call("coord", "PUT", policy, json=bad)
        assert answer.status_code == 400, answer.text
