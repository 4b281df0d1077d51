"""The product catalogue (issue 21): a product declares its thaw-to-infusion window, storage range and
shelf life; a product bag of an ordered case takes its expiry from the shelf life and its thaw window from
the catalogue; only QA of a site that makes the product (or an administrator) changes the limits. Tried
as a hurried user and as someone who should not touch them would."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pypdfium2 as pdfium
import pytest

from backend.services import chain
from tests.integration.helpers import admin, assert_problem, make_site, make_user
from tests.integration.journey import PASSWORD, World, accept_receipt
from tests.integration.planning.planning_support import ordered_case, planned_world
from tests.integration.test_custody_refusals import refused

ZURICH = ZoneInfo("Europe/Zurich")
LIMITS = "/api/v1/planning/products/car-t/limits"
SIGNED = [
    {"username": "pharm", "password": PASSWORD, "meaning": "verified at bedside"},
    {"username": "pharm2", "password": PASSWORD, "meaning": "administered"},
]


def _limits(**changes: Any) -> dict[str, Any]:
    return {
        "thaw_to_infusion_min": 30,
        "storage_min_c": -196,
        "storage_max_c": -150,
        "shelf_life_days": 270,
        "reason": "SmPC v4: infuse within 30 minutes of thawing",
    } | changes


def _local(moment: datetime) -> str:
    local = moment.astimezone(ZURICH)
    return f"{local:%H:%M} {local.tzname()}"


async def _material_at_cta(world: World, coi: str) -> str:
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    await world.scan_ok("mfg", "receive", "CTA", ship)
    await world.scan_ok("mfg", "receive", "CTA", ship, aph)
    await accept_receipt(world, "mfg", ship)
    return aph


async def _register(world: World, coi: str, aph: str, **extra: Any) -> Any:
    return await world.call(
        "mfg",
        "POST",
        f"/api/v1/cases/{coi}/units",
        json={"kind": "PRC", "product": "Autologous CAR-T", "site": "CTA", "from_units": [aph], **extra},
    )


async def _stored(world: World, coi: str, prc: str) -> None:
    await world.scan_ok("mfg", "label", "CTA", prc)
    await world.ok("qa", "POST", f"/api/v1/units/{prc}/release", 201, json={"password": PASSWORD})
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship, prc)
    await world.scan_ok("courier1", "pickup", "CTA", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship, prc)
    await accept_receipt(world, "pharm", ship)
    await world.scan_ok("pharm", "store", "USZ", prc, storage_location="LN2-1")


async def _ordered_bag(world: World, **extra: Any) -> tuple[str, dict[str, Any]]:
    coi = await ordered_case(world)
    aph = await _material_at_cta(world, coi)
    response = await _register(world, coi, aph, **extra)
    assert response.status_code == 201, response.text
    return coi, response.json()


async def test_a_product_with_a_30_minute_window_refuses_infusion_at_31_minutes(client, monkeypatch):
    world = await planned_world(client)
    await world.ok("qa", "PUT", LIMITS, json=_limits(thaw_to_infusion_min=30))
    coi, bag = await _ordered_bag(world)
    # The bag is of the case's ordered product, without the registration naming it.
    assert bag["catalogue_product"] == "car-t"
    await _stored(world, coi, bag["id"])
    await world.scan_ok("pharm", "dispense", "USZ", bag["id"])
    thaw = await world.scan_ok("pharm", "thaw", "USZ", bag["id"])
    thawed = datetime.fromisoformat(thaw["server_time"])
    monkeypatch.setattr(chain, "now", lambda: thawed + timedelta(minutes=31))
    body = refused(
        await world.scan("pharm", "infuse", "USZ", f"&/{coi}", bag["id"], signatures=SIGNED),
        409,
        "thaw_window_exceeded",
    )
    detail = body["detail"]
    assert detail.startswith("STOP")
    assert "within 30 min of thawing" in detail
    # The times as the bedside reads them: thawed at, the limit, now, in the site's time zone.
    assert f"thawed at {_local(thawed)}" in detail
    assert f"limit {_local(thawed + timedelta(minutes=30))}" in detail
    assert f"now {_local(thawed + timedelta(minutes=31))}" in detail
    assert "31 min ago" in detail
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bag['id']}"))["status"] == "thawed"
    # The default hour would have let it through: at 29 minutes the same infusion is accepted.
    monkeypatch.setattr(chain, "now", lambda: thawed + timedelta(minutes=29))
    await world.scan_ok("pharm", "infuse", "USZ", f"&/{coi}", bag["id"], signatures=SIGNED)


async def test_a_longer_window_from_the_catalogue_lets_a_bag_wait_longer_than_the_default(
    client, monkeypatch
):
    world = await planned_world(client)
    await world.ok("admin", "PUT", LIMITS, json=_limits(thaw_to_infusion_min=180))
    coi, bag = await _ordered_bag(world)
    await _stored(world, coi, bag["id"])
    await world.scan_ok("pharm", "dispense", "USZ", bag["id"])
    thawed = datetime.fromisoformat((await world.scan_ok("pharm", "thaw", "USZ", bag["id"]))["server_time"])
    monkeypatch.setattr(chain, "now", lambda: thawed + timedelta(minutes=181))
    refused(
        await world.scan("pharm", "infuse", "USZ", f"&/{coi}", bag["id"], signatures=SIGNED),
        409,
        "thaw_window_exceeded",
    )
    monkeypatch.setattr(chain, "now", lambda: thawed + timedelta(minutes=90))
    await world.scan_ok("pharm", "infuse", "USZ", f"&/{coi}", bag["id"], signatures=SIGNED)


async def test_a_bags_expiry_comes_from_the_shelf_life_and_an_expired_bag_goes_no_further(
    client, monkeypatch
):
    world = await planned_world(client)
    await world.ok("admin", "PUT", LIMITS, json=_limits(shelf_life_days=10))
    made = chain.now() - timedelta(days=9)
    coi, bag = await _ordered_bag(world, manufactured_at=made.isoformat())
    expires = datetime.fromisoformat(bag["expires_at"])
    assert expires == made + timedelta(days=10)
    assert datetime.fromisoformat(bag["manufactured_at"]) == made
    await _stored(world, coi, bag["id"])
    real_now = chain.now
    after = expires + timedelta(minutes=1)
    # Each step towards the patient refuses the expired bag, and the bag stays where it was.
    for step, status, extra in (
        ("dispense", "stored", {}),
        ("thaw", "dispensed", {}),
        ("infuse", "thawed", {"signatures": SIGNED}),
    ):
        monkeypatch.setattr(chain, "now", lambda: after)
        codes = (f"&/{coi}", bag["id"]) if step == "infuse" else (bag["id"],)
        body = refused(await world.scan("pharm", step, "USZ", *codes, **extra), 409, "expired")
        assert f"expired at {expires.astimezone(ZURICH):%Y-%m-%d %H:%M}" in body["detail"]
        assert (await world.ok("pharm", "GET", f"/api/v1/units/{bag['id']}"))["status"] == status
        monkeypatch.setattr(chain, "now", real_now)
        if step != "infuse":
            await world.scan_ok("pharm", step, "USZ", bag["id"])


async def test_an_expiry_beyond_the_shelf_life_is_refused_and_an_earlier_one_kept(client):
    world = await planned_world(client)
    await world.ok("admin", "PUT", LIMITS, json=_limits(shelf_life_days=30))
    coi = await ordered_case(world)
    aph = await _material_at_cta(world, coi)
    made = chain.now() - timedelta(days=1)
    too_late = made + timedelta(days=31)
    body = assert_problem(
        await _register(world, coi, aph, manufactured_at=made.isoformat(), expires_at=too_late.isoformat()),
        422,
        "later than product car-t allows",
        "30 days",
    )
    assert "expires_at" in str(body)
    before = await world.call(
        "mfg",
        "POST",
        f"/api/v1/cases/{coi}/units",
        json={
            "kind": "PRC",
            "product": "Autologous CAR-T",
            "site": "CTA",
            "from_units": [aph],
            "manufactured_at": made.isoformat(),
            "expires_at": (made - timedelta(hours=1)).isoformat(),
        },
    )
    assert_problem(before, 422, "not after the bag's manufacture")
    assert_problem(
        await _register(world, coi, aph, manufactured_at=(chain.now() + timedelta(days=1)).isoformat()),
        422,
        "in the future",
    )
    # Another product than the case was ordered for, or one the catalogue does not hold: refused.
    assert_problem(await _register(world, coi, aph, catalogue_product="other-product"), 422, "ordered for")
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    assert [u["kind"] for u in timeline["units"]] == ["APH"], "a refused registration records nothing"
    earlier = made + timedelta(days=20)
    kept = await _register(world, coi, aph, manufactured_at=made.isoformat(), expires_at=earlier.isoformat())
    assert kept.status_code == 201, kept.text
    assert datetime.fromisoformat(kept.json()["expires_at"]) == earlier
    registered = [e for e in (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["events"]]
    data = next(
        e["data"]
        for e in registered
        if e["action"] == "unit_registered" and kept.json()["id"] in e["unit_ids"]
    )
    assert data["catalogue_product"] == "car-t"


async def test_a_product_not_in_the_catalogue_or_on_starting_material_is_refused(client):
    world = await planned_world(client)
    coi = await world.new_case()  # no order: the registration may name the product
    aph = await _material_at_cta(world, coi)
    assert_problem(await _register(world, coi, aph, catalogue_product="no-such-product"), 422, "no product")
    apheresis = await world.call(
        "nurse",
        "POST",
        f"/api/v1/cases/{coi}/units",
        json={"kind": "APH", "product": "Apheresis", "site": "USZ-APH", "catalogue_product": "car-t"},
    )
    assert_problem(apheresis, 422, "only a product bag")
    named = await _register(world, coi, aph, catalogue_product="car-t")
    assert named.status_code == 201, named.text
    assert named.json()["catalogue_product"] == "car-t"
    # Without an order or a named product, a bag keeps the caller's expiry and the default window.
    plain = await _register(world, coi, aph)
    assert plain.status_code == 201, plain.text
    assert plain.json()["catalogue_product"] is None
    assert plain.json()["expires_at"] is None


async def test_only_qa_of_a_site_that_makes_the_product_or_an_admin_changes_its_limits(client):
    world = await planned_world(client)  # CTA has capacity for car-t: it makes the product
    root = await admin(client)
    await make_site(client, root, "KSB")
    await make_site(client, root, "KSB-LAB", kind="manufacturing")
    other_qa = await make_user(client, root, "ksbqa", ["qa"], ["KSB", "KSB-LAB"], password=PASSWORD)
    other_coord = await make_user(client, root, "ksbcoord", ["coordinator"], ["KSB"], password=PASSWORD)
    usz_qa = await make_user(client, root, "uszqa", ["qa"], ["USZ"], password=PASSWORD)
    for headers in (other_coord, world.headers["coord"], world.headers["mfg"], world.headers["pharm"]):
        response = await client.put(LIMITS, headers=headers, json=_limits(thaw_to_infusion_min=5))
        assert response.status_code == 403, response.text
    for headers in (other_qa, usz_qa):
        assert_problem(
            await client.put(LIMITS, headers=headers, json=_limits(thaw_to_infusion_min=5)),
            403,
            "QA of a site that makes it",
        )
    catalogue = await world.ok("coord", "GET", "/api/v1/planning/products")
    assert catalogue[0]["thaw_to_infusion_min"] == 60, "a refused change changes nothing"
    changed = await world.ok("qa", "PUT", LIMITS, json=_limits(thaw_to_infusion_min=45))
    assert changed["thaw_to_infusion_min"] == 45
    trail = await world.ok("admin", "GET", "/api/v1/audit", params={"entity": "planning_product"})
    update = next(e for e in trail if e["action"] == "update")
    assert update["old_value"]["thaw_to_infusion_min"] == 60
    assert update["new_value"]["thaw_to_infusion_min"] == 45
    assert update["reason"].startswith("SmPC")
    assert {e["action"] for e in trail} >= {"catalogue_change_refused"}
    # A product nobody declared capacity for: only an administrator.
    assert (
        await world.call("qa", "PUT", "/api/v1/planning/products/nothing/limits", json=_limits())
    ).status_code == 404


@pytest.mark.parametrize(
    "changes",
    [
        {"thaw_to_infusion_min": 4},
        {"thaw_to_infusion_min": 100000},
        {"shelf_life_days": 0},
        {"storage_min_c": -273},
        {"storage_max_c": 41},
        {"reason": "x" * 1001},
        {"reason": ""},
        {"unexpected": 1},
    ],
)
async def test_hostile_limits_are_refused(client, changes):
    world = await planned_world(client)
    response = await world.call("admin", "PUT", LIMITS, json=_limits(**changes))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_inverted_storage_range_is_refused(client):
    world = await planned_world(client)
    assert_problem(
        await world.call("admin", "PUT", LIMITS, json=_limits(storage_min_c=-150, storage_max_c=-196)),
        422,
        "storage range",
    )


async def test_a_tampered_catalogue_row_is_refused_by_the_database(client, database_url):
    world = await planned_world(client)
    coi = await world.new_case()
    conn = await asyncpg.connect(database_url)
    try:
        for column, value in (
            ("thaw_to_infusion_min", 0),
            ("shelf_life_days", 100000),
            ("storage_min_c", 0),  # above storage_max_c
        ):
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(f"UPDATE planning_products SET {column} = $1 WHERE code = 'car-t'", value)
        # A bag of a product the catalogue does not hold.
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "INSERT INTO units (id, coi, kind, product, status, catalogue_product) "
                "VALUES ($1, $2, 'PRC', 'x', 'created', 'nothing')",
                f"{coi}-PRC-09",
                coi,
            )
    finally:
        await conn.close()


async def test_the_record_shows_the_products_limits_and_the_bags_expiry(client):
    world = await planned_world(client)
    await world.ok("admin", "PUT", LIMITS, json=_limits(thaw_to_infusion_min=30, shelf_life_days=180))
    made = chain.now() - timedelta(days=2)
    coi, bag = await _ordered_bag(world, manufactured_at=made.isoformat())
    record = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/record.json")
    [product] = record["products"]
    assert product == {
        "code": "car-t",
        "name": "Autologous CAR-T cells",
        "thaw_to_infusion_min": 30,
        "storage_min_c": -196,
        "storage_max_c": -150,
        "shelf_life_days": 180,
    }
    [unit] = [u for u in record["units"] if u["id"] == bag["id"]]
    assert unit["catalogue_product"] == "car-t"
    assert datetime.fromisoformat(unit["manufactured_at"]) == made
    response = await world.call("coord", "GET", f"/api/v1/cases/{coi}/report.pdf")
    assert response.status_code == 200, response.text
    document = pdfium.PdfDocument(response.content)
    flat = " ".join(
        " ".join(document[i].get_textpage().get_text_range() for i in range(len(document))).split()
    )
    assert "Product limits" in flat
    assert "infuse within 30 min of thawing" in flat
    assert "store at -196 °C to -150 °C" in flat
    assert "shelf life 180 days from manufacture" in flat
    expires = made + timedelta(days=180)
    assert (
        f"{bag['id']}: car-t, made {made:%Y-%m-%d %H:%M:%S} UTC, expires {expires:%Y-%m-%d %H:%M:%S} UTC"
        in flat
    )
