"""Each refusal: recorded in the chain (or as an orphan), alerted, answered with a clear problem, and
nothing else changed."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from backend.db.pool import create_pool
from backend.services.scans import alert_overdue_handovers
from tests.integration.journey import (
    PASSWORD,
    World,
    accept_receipt,
    build_world,
    starting_material_at_manufacturing,
)


async def _case_with_packed_shipment(world: World) -> tuple[str, str, str]:
    coi = await world.new_case()
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    return coi, aph, ship


def refused(response, status: int, refusal: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["refusal"] == refusal, body
    assert body["detail"]
    return body


async def _events(world: World, coi: str) -> list[dict]:
    return (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["events"]


async def test_coi_mismatch_is_refused_recorded_and_alerted(client):
    world = await build_world(client)
    coi_a, aph_a, ship_a = await _case_with_packed_shipment(world)
    coi_b = await world.new_case()
    aph_b = await world.unit("nurse", coi_b, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph_b)

    body = refused(await world.scan("nurse", "pack", "USZ-APH", ship_a, aph_b), 409, "coi_mismatch")
    assert "STOP" in body["detail"]
    assert coi_a in body["detail"]
    assert coi_b in body["detail"]
    events = await _events(world, coi_a)
    assert events[-1]["outcome"] == "refused"
    assert events[-1]["refusal"] == "coi_mismatch"
    assert events[-1]["id"] == body["event_id"]
    alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": coi_a})
    assert alerts[0]["kind"] == "coi_mismatch"
    assert alerts[0]["severity"] == "critical"
    assert alerts[0]["event_id"] == body["event_id"]
    # Nothing moved: the wrong bag is still only labelled, the shipment still planned.
    assert (await world.ok("nurse", "GET", f"/api/v1/units/{aph_b}"))["status"] == "labelled"
    assert (await world.ok("nurse", "GET", f"/api/v1/shipments/{ship_a}"))["status"] == "planned"
    assert (await world.ok("qa", "GET", f"/api/v1/cases/{coi_a}/verify"))["ok"] is True
    _ = aph_a


async def test_bedside_mismatch_of_wristband_and_bag_is_refused(client):
    world = await build_world(client)
    coi, _aph, _ship = await starting_material_at_manufacturing(world)
    other = await world.new_case()
    prc = await world.unit("mfg", coi, "PRC", "CTA")
    body = refused(await world.scan("pharm", "infuse", "USZ", f"&/{other}", prc), 409, "coi_mismatch")
    assert body["coi"] in (coi, other)


async def test_steps_out_of_order_are_refused(client):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    body = refused(await world.scan("courier1", "pickup", "USZ-APH", ship), 409, "out_of_order")
    assert aph in body["detail"]  # names what is not packed yet
    refused(await world.scan("pharm", "store", "USZ", aph, storage_location="X"), 409, "out_of_order")
    events = await _events(world, coi)
    assert [e["outcome"] for e in events[-2:]] == ["refused", "refused"]


async def test_unknown_items_are_refused_even_without_a_case(client, database_url):
    world = await build_world(client)
    body = refused(await world.scan("courier1", "pickup", "CRX", "SHP-2026-999999"), 422, "unknown_item")
    assert "SHP-2026-999999" in body["detail"]
    assert body["event_id"] is None
    refused(await world.scan("courier1", "pickup", "CRX", "hello world"), 422, "unknown_item")
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM orphan_refusals") == 2
    finally:
        await conn.close()
    alerts = await world.ok("coord", "GET", "/api/v1/alerts")
    assert sum(a["kind"] == "refused_step" for a in alerts) == 2


async def test_unit_of_another_shipment_and_unexpected_unit(client):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    second = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", second)
    refused(await world.scan("nurse", "pack", "USZ-APH", ship, second), 409, "unexpected_item")
    ship2 = await world.shipment("coord", coi, "USZ-APH", "CTA", [second])
    body = refused(await world.scan("nurse", "pack", "USZ-APH", ship2, aph), 409, "wrong_shipment")
    assert ship in body["detail"]


async def test_repeated_idempotency_key_returns_the_first_answer(client, database_url):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    key = str(uuid.uuid4())
    first = await world.scan("nurse", "pack", "USZ-APH", ship, aph, key=key)
    again = await world.scan("nurse", "pack", "USZ-APH", ship, aph, key=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    both = await asyncio.gather(
        *(world.scan("courier1", "pickup", "USZ-APH", ship, key="same-key-123") for _ in range(5))
    )
    assert {r.status_code for r in both} == {201}
    assert len({r.json()["event_id"] for r in both}) == 1
    # A resend after the pickup committed would be refused if judged afresh (already picked up); it gets
    # the first answer, and its own refused attempt leaves no event and no alert behind.
    late = await world.scan("courier1", "pickup", "USZ-APH", ship, key="same-key-123")
    assert late.status_code == 201
    assert late.json() == both[0].json()
    conn = await asyncpg.connect(database_url)
    try:
        counts = dict(
            await conn.fetch(
                "SELECT action || ':' || outcome, count(*) FROM custody_events WHERE coi = $1 GROUP BY 1",
                coi,
            )
        )
        alerts = await conn.fetchval("SELECT count(*) FROM alerts WHERE coi = $1", coi)
    finally:
        await conn.close()
    assert counts["pack:accepted"] == counts["pickup:accepted"] == 1
    assert not [k for k in counts if k.endswith(":refused")], counts
    assert alerts == 0
    # Someone else cannot reuse the key.
    stolen = await world.scan("courier2", "pickup", "USZ-APH", ship, key="same-key-123")
    assert stolen.status_code == 409


async def test_each_scan_announces_its_event_once_and_a_resend_announces_nothing(client, database_url):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    key = str(uuid.uuid4())
    packed = await world.scan("nurse", "pack", "USZ-APH", ship, aph, key=key)
    resent = await world.scan("nurse", "pack", "USZ-APH", ship, aph, key=key)
    assert packed.status_code == resent.status_code == 201
    early = refused(await world.scan("pharm", "store", "USZ", aph, storage_location="X"), 409, "out_of_order")
    conn = await asyncpg.connect(database_url)
    try:
        notices = await conn.fetch(
            """SELECT (payload->>'event_id')::bigint AS event_id, payload->>'outcome' AS outcome, sites
               FROM outbox WHERE kind = 'event' AND coi = $1 AND (payload->>'event_id')::bigint = ANY($2)""",
            coi,
            [packed.json()["event_id"], early["event_id"]],
        )
    finally:
        await conn.close()
    assert sorted((n["event_id"], n["outcome"]) for n in notices) == sorted(
        [(packed.json()["event_id"], "accepted"), (early["event_id"], "refused")]
    )
    sites = {n["outcome"]: set(n["sites"]) for n in notices}
    assert sites == {"accepted": {"USZ-APH", "CTA"}, "refused": {"USZ", "USZ-APH"}}


async def test_wrong_role_and_wrong_site_are_refused(client):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    body = refused(await world.scan("courier1", "pack", "USZ-APH", ship, aph), 403, "wrong_role")
    assert "courier" in body["detail"]
    # Manufacturing at CTA sees the leg (it ends there) but is not bound to the collection site.
    refused(await world.scan("mfg", "pack", "USZ-APH", ship, aph), 403, "wrong_site")
    # A coordinator may not scan at all (route policy), answered before any record is touched.
    response = await world.scan("coord", "pack", "USZ-APH", ship, aph)
    assert response.status_code == 403
    events = await _events(world, coi)
    assert [e["refusal"] for e in events if e["outcome"] == "refused"] == ["wrong_role", "wrong_site"]
    # A case of another site is invisible to a courier of unrelated sites: 404, not 403.
    await world.ok(
        "admin",
        "POST",
        "/api/v1/sites",
        201,
        json={"code": "FAR", "name": "Far away", "kind": "hospital", "time_zone": "UTC"},
    )
    await world.ok(
        "admin",
        "POST",
        "/api/v1/users",
        201,
        json={
            "username": "stranger",
            "full_name": "Stranger",
            "password": PASSWORD,
            "roles": ["coordinator"],
            "sites": ["FAR"],
        },
    )
    login = await client.post("/api/v1/auth/login", json={"username": "stranger", "password": PASSWORD})
    stranger = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await client.get(f"/api/v1/cases/{coi}", headers=stranger)).status_code == 404


async def test_signatures_need_the_right_password_and_two_people(client):
    world = await build_world(client)
    coi, _aph, _ship = await starting_material_at_manufacturing(world)
    prc = await world.unit("mfg", coi, "PRC", "CTA")
    await world.scan_ok("mfg", "label", "CTA", prc)
    wrong = await world.call("qa", "POST", f"/api/v1/units/{prc}/release", json={"password": "not it"})
    assert wrong.status_code == 422
    assert "signature refused" in wrong.json()["detail"]
    refused(await world.scan("mfg", "pack", "CTA", prc), 422, "unknown_item")
    # Get the bag to the bedside, then try to sign the infusion badly.
    await world.ok("qa", "POST", f"/api/v1/units/{prc}/release", 201, json={"password": PASSWORD})
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship, prc)
    await world.scan_ok("courier1", "pickup", "CTA", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship, prc)
    await accept_receipt(world, "pharm", ship)
    await world.scan_ok("pharm", "store", "USZ", prc, storage_location="LN2-1")
    await world.scan_ok("pharm", "dispense", "USZ", prc)
    await world.scan_ok("pharm", "thaw", "USZ", prc)
    twice = [
        {"username": "pharm", "password": PASSWORD, "meaning": "verified at bedside"},
        {"username": "pharm", "password": PASSWORD, "meaning": "administered"},
    ]
    refused(
        await world.scan("pharm", "infuse", "USZ", f"&/{coi}", prc, signatures=twice),
        422,
        "signature_required",
    )
    bad_password = [
        {"username": "pharm", "password": PASSWORD, "meaning": "verified at bedside"},
        {"username": "pharm2", "password": "guess", "meaning": "administered"},
    ]
    body = refused(
        await world.scan("pharm", "infuse", "USZ", f"&/{coi}", prc, signatures=bad_password),
        422,
        "signature_invalid",
    )
    # One answer for every refused signature (tests/security/test_security_signatures.py).
    assert body["detail"] == "signature refused"
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{prc}"))["status"] == "thawed"


async def test_unconfirmed_handover_raises_an_alert_and_confirmation_resolves_it(client, database_url):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    await world.scan_ok("courier1", "handover", "CRX", ship, handover_to="courier2")
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await conn.execute("UPDATE handovers SET due_at = now() - interval '1 minute'")
        assert await alert_overdue_handovers(pool) == 1
        assert await alert_overdue_handovers(pool) == 0  # one ongoing condition, one alert
    finally:
        await pool.close()
    alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"shipment_id": ship})
    assert [(a["kind"], a["status"]) for a in alerts] == [("unconfirmed_handover", "open")]
    handover = (await world.ok("courier2", "GET", f"/api/v1/shipments/{ship}"))["pending_handover"]
    refused_confirm = await world.call("courier1", "POST", f"/api/v1/handovers/{handover}/confirm")
    assert refused_confirm.status_code == 403
    await world.ok("courier2", "POST", f"/api/v1/handovers/{handover}/confirm", 201)
    alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"shipment_id": ship})
    assert alerts[0]["status"] == "resolved"
    assert alerts[0]["ended_at"] is not None
    _ = coi


async def test_alert_acknowledge_and_close(client):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    await world.scan("courier1", "pickup", "USZ-APH", ship)
    alert = (await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": coi}))[0]
    acked = await world.ok(
        "coord",
        "POST",
        f"/api/v1/alerts/{alert['id']}/acknowledge",
        201,
        json={"comment": "called the courier"},
    )
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_by"] == "coord"
    closed = await world.ok(
        "coord",
        "POST",
        f"/api/v1/alerts/{alert['id']}/close",
        201,
        json={"reason": "courier came too early; no risk"},
    )
    assert closed["status"] == "closed"
    again = await world.call("coord", "POST", f"/api/v1/alerts/{alert['id']}/close", json={"reason": "again"})
    assert again.status_code == 409
    _ = aph


async def test_fifty_parallel_scans_on_one_case_leave_a_gap_free_valid_chain(client):
    world = await build_world(client)
    coi = await world.new_case()
    units = [await world.unit("nurse", coi, "APH", "USZ-APH") for _ in range(50)]
    responses = await asyncio.gather(*(world.scan("nurse", "label", "USZ-APH", unit) for unit in units))
    assert [r.status_code for r in responses] == [201] * 50
    seqs = sorted(r.json()["seq"] for r in responses)
    assert len(set(seqs)) == 50
    events = await _events(world, coi)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    verdict = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/verify")
    assert verdict["ok"] is True
    assert verdict["events"] == 1 + 50 + 50  # opened, 50 registered, 50 labelled


async def test_patient_fields_only_for_the_treatment_site(client):
    world = await build_world(client)
    coi = await world.new_case()
    assert (await world.ok("pharm", "GET", f"/api/v1/cases/{coi}"))["patient_ref"] == "MRN-0042"
    courier_view = await world.ok("courier1", "GET", f"/api/v1/cases/{coi}")
    assert courier_view["patient_ref"] is None
    assert courier_view["birth_year"] is None
    # Manufacturing sees the case once it travels to their site, never the patient fields.
    assert (await world.call("mfg", "GET", f"/api/v1/cases/{coi}")).status_code == 404
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    assert (await world.ok("mfg", "GET", f"/api/v1/cases/{coi}"))["patient_ref"] is None
