"""Custody rules a QA person signs off, each tried the way a hurried or careless user would break it:
signatures bound to the step, idempotency keys bound to one request, hand-overs only to people on the
route, a bedside mismatch filed in every case involved, and a warm delivery accepted only by QA."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from backend.db.pool import create_pool
from backend.services import alerting, chain
from tests.integration.helpers import admin, make_user
from tests.integration.journey import (
    PASSWORD,
    World,
    bag_at_bedside,
    build_world,
    released_bag,
    starting_material_at_manufacturing,
    stored_bag,
)
from tests.integration.test_custody_refusals import _case_with_packed_shipment, refused


def _signatures(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"username": who, "password": PASSWORD, "meaning": meaning} for who, meaning in pairs]


async def _events(world: World, coi: str) -> list[dict]:
    return (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["events"]


async def test_an_infusion_signed_with_meanings_of_other_steps_is_refused(client):
    world = await build_world(client)
    coi, bag = await bag_at_bedside(world)
    for pairs in (
        (("pharm", "released"), ("pharm2", "quarantined")),
        (("pharm", "administered"), ("pharm2", "administered")),
        (("pharm", "verified at bedside"), ("pharm2", "received and verified")),
    ):
        body = refused(
            await world.scan("pharm", "infuse", "USZ", f"&/{coi}", bag, signatures=_signatures(*pairs)),
            422,
            "signature_meaning",
        )
        assert "'verified at bedside'" in body["detail"]
        assert "'administered'" in body["detail"]
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bag}"))["status"] == "thawed"
    done = await world.scan(
        "pharm",
        "infuse",
        "USZ",
        f"&/{coi}",
        bag,
        signatures=_signatures(("pharm", "verified at bedside"), ("pharm2", "administered")),
    )
    assert done.status_code == 201, done.text


async def test_an_infusion_cosigned_by_a_pharmacist_of_another_site_is_refused(client):
    world = await build_world(client)
    coi, bag = await bag_at_bedside(world)
    # A pharmacist, but bound only to the manufacturing site: not one who may sign at USZ's bedside.
    root = await admin(client)
    await make_user(client, root, "ctapharm", ["pharmacist"], ["CTA"], password=PASSWORD)
    body = refused(
        await world.scan(
            "pharm",
            "infuse",
            "USZ",
            f"&/{coi}",
            bag,
            signatures=_signatures(("pharm", "verified at bedside"), ("ctapharm", "administered")),
        ),
        422,
        "signature_invalid",
    )
    assert body["detail"] == "signature refused"
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bag}"))["status"] == "thawed"


async def test_an_idempotency_key_reused_for_a_different_request_is_refused_and_audited(client):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    key = str(uuid.uuid4())
    first = await world.scan("nurse", "pack", "USZ-APH", ship, aph, key=key)
    assert first.status_code == 201, first.text
    # The very same scan sent again (its device clock read again): the first answer.
    again = await world.scan("nurse", "pack", "USZ-APH", ship, aph, key=key)
    assert again.status_code == 201
    assert again.json() == first.json()
    # A pickup's key sent with a hand-over: refused, not answered with the pickup's answer.
    pickup_key = str(uuid.uuid4())
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship, key=pickup_key)
    reused = await world.scan("courier1", "handover", "USZ-APH", ship, key=pickup_key, handover_to="courier2")
    assert reused.status_code == 422, reused.text
    assert reused.headers["content-type"].startswith("application/problem+json")
    assert "different request" in reused.json()["detail"]
    events = await _events(world, coi)
    assert [e["action"] for e in events].count("handover") == 0
    assert [e["action"] for e in events].count("pickup") == 1
    trail = await world.ok("admin", "GET", "/api/v1/audit", params={"entity": "scan_request"})
    entries = [e for e in trail if e["entity_id"] == pickup_key]
    assert entries, trail
    assert entries[0]["action"] == "idempotency_key_refused"
    assert entries[0]["new_value"]["why"] == "a different request"
    # The same key from someone else is refused as before, and audited too.
    stolen = await world.scan("courier2", "pickup", "USZ-APH", ship, key=pickup_key)
    assert stolen.status_code == 409
    trail = await world.ok("admin", "GET", "/api/v1/audit", params={"entity": "scan_request"})
    assert {e["new_value"]["why"] for e in trail if e["entity_id"] == pickup_key} == {
        "a different request",
        "another user",
    }


async def test_a_handover_to_a_courier_not_on_the_route_is_refused(client):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    root = await admin(client)
    # A courier bound only to USZ: neither this shipment's origin (USZ-APH) nor its destination (CTA).
    await make_user(client, root, "offroute", ["courier"], ["USZ"], password=PASSWORD)
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    body = refused(
        await world.scan("courier1", "handover", "USZ-APH", ship, handover_to="offroute"),
        422,
        "receiver_not_on_route",
    )
    assert "offroute" in body["detail"]
    assert ship in body["detail"]
    shipment = await world.ok("coord", "GET", f"/api/v1/shipments/{ship}")
    assert shipment["status"] == "in_transit"
    # On the route: accepted.
    await world.scan_ok("courier1", "handover", "USZ-APH", ship, handover_to="courier2")
    _ = coi


async def test_a_bedside_mismatch_is_filed_in_both_cases(client, database_url):
    world = await build_world(client)
    coi, bag = await bag_at_bedside(world)
    other = await world.new_case()
    body = refused(
        await world.scan(
            "pharm",
            "infuse",
            "USZ",
            f"&/{other}",
            bag,
            signatures=_signatures(("pharm", "verified at bedside"), ("pharm2", "administered")),
        ),
        409,
        "coi_mismatch",
    )
    assert "STOP" in body["detail"]
    for case in (coi, other):
        last = (await _events(world, case))[-1]
        assert (last["action"], last["outcome"], last["refusal"]) == ("infuse", "refused", "coi_mismatch")
        alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": case})
        assert [a["severity"] for a in alerts if a["kind"] == "coi_mismatch"] == ["critical"], alerts
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bag}"))["status"] == "thawed"
    for case in (coi, other):
        assert (await world.ok("admin", "GET", f"/api/v1/cases/{case}/verify"))["ok"] is True
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM custody_events WHERE outcome = 'refused'") == 2
    finally:
        await conn.close()


async def _bag_arrived_with_critical_excursion(world: World, database_url: str) -> tuple[str, str]:
    """A released bag's shipment CTA -> USZ, arrived and scanned, with a critical high-temperature alert
    still open on the leg (as the excursion engine raises it): (coi, shipment)."""
    coi, prc = await released_bag(world)
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship, prc)
    await world.scan_ok("courier1", "pickup", "CTA", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship, prc)
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await alerting.raise_alert(
                conn,
                kind="temperature_high",
                severity="critical",
                title=f"Above -150 °C on {ship}",
                detail="-120 °C for 14 min",
                condition_key=f"excursion:{ship}:test",
                sites=["CTA", "USZ"],
                coi=coi,
                shipment_id=ship,
            )
    finally:
        await pool.close()
    return coi, ship


def _receipt(decision: str, **extra: object) -> dict[str, object]:
    checks = {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True}
    return {"decision": decision, "password": PASSWORD, "checklist": checks, **extra}


async def test_a_delivery_with_an_unresolved_critical_excursion_needs_qa_to_be_accepted(client, database_url):
    world = await build_world(client)
    coi, ship = await _bag_arrived_with_critical_excursion(world, database_url)
    path = f"/api/v1/shipments/{ship}/receipt"
    refused_accept = await world.call("pharm", "POST", path, json=_receipt("accept"))
    assert refused_accept.status_code == 409, refused_accept.text
    assert "QA" in refused_accept.json()["detail"]
    assert f"Above -150 °C on {ship}" in refused_accept.json()["detail"]
    # The receiver cannot be their own QA, and a pharmacist is not QA.
    for who in ("pharm", "pharm2"):
        override = {"username": who, "password": PASSWORD, "deviation": "within the stability data, DEV-1"}
        answer = await world.call("pharm", "POST", path, json=_receipt("accept", qa_override=override))
        assert answer.status_code == 422, answer.text
    assert (await world.ok("pharm", "GET", f"/api/v1/shipments/{ship}"))["status"] == "arrived"
    deviation = "within the stability data, DEV-2026-041"
    override = {"username": "qa", "password": PASSWORD, "deviation": deviation}
    await world.ok("pharm", "POST", path, 201, json=_receipt("accept", qa_override=override))
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT id, data FROM custody_events WHERE shipment_id = $1 AND action = 'receipt'", ship
        )
        signatures = await conn.fetch(
            "SELECT username, meaning FROM signatures WHERE event_id = $1 ORDER BY id", row["id"]
        )
    finally:
        await conn.close()
    assert [(s["username"], s["meaning"]) for s in signatures] == [
        ("pharm", "received and verified"),
        ("qa", "accepted with deviation"),
    ]
    data = json.loads(row["data"])
    assert data["deviation"] == deviation
    assert len(data["excursion_alerts"]) == 1
    assert (await world.ok("admin", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True


async def test_a_delivery_with_an_unresolved_critical_excursion_may_be_quarantined(client, database_url):
    world = await build_world(client)
    _coi, ship = await _bag_arrived_with_critical_excursion(world, database_url)
    await world.ok("pharm", "POST", f"/api/v1/shipments/{ship}/receipt", 201, json=_receipt("quarantine"))
    assert (await world.ok("pharm", "GET", f"/api/v1/shipments/{ship}"))["status"] == "quarantined"


async def test_a_bag_past_its_thaw_window_is_a_stop_at_the_bedside(client, monkeypatch):
    world = await build_world(client)
    coi, bag = await bag_at_bedside(world)
    thawed = chain.now()
    signed = _signatures(("pharm", "verified at bedside"), ("pharm2", "administered"))
    # Sixty-one minutes after the thaw the record holds.
    monkeypatch.setattr(chain, "now", lambda: thawed + timedelta(minutes=61))
    body = refused(
        await world.scan("pharm", "infuse", "USZ", f"&/{coi}", bag, signatures=signed),
        409,
        "thaw_window_exceeded",
    )
    assert "STOP" in body["detail"]
    assert "within 60 min of thawing" in body["detail"]
    # The times as read at the bedside: in the site's zone (Europe/Zurich), with the limit.
    thaw = next(e for e in reversed(await _events(world, coi)) if e["action"] == "thaw")
    local = datetime.fromisoformat(thaw["server_time"]).astimezone(ZoneInfo("Europe/Zurich"))
    assert f"thawed at {local:%H:%M} {local.tzname()}" in body["detail"]
    assert f"limit {local + timedelta(minutes=60):%H:%M} {local.tzname()}" in body["detail"]
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bag}"))["status"] == "thawed"
    # Within the window the same infusion goes through.
    monkeypatch.setattr(chain, "now", lambda: thawed + timedelta(minutes=5))
    done = await world.scan("pharm", "infuse", "USZ", f"&/{coi}", bag, signatures=signed)
    assert done.status_code == 201, done.text


async def test_an_expired_unit_is_not_dispensed_thawed_or_infused(client, monkeypatch):
    world = await build_world(client)
    coi, _aph, _ship = await starting_material_at_manufacturing(world)
    registered = chain.now()
    prc = await world.unit("mfg", coi, "PRC", "CTA", expires_at=(registered + timedelta(days=1)).isoformat())
    await world.scan_ok("mfg", "label", "CTA", prc)
    await world.ok("qa", "POST", f"/api/v1/units/{prc}/release", 201, json={"password": PASSWORD})
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship, prc)
    await world.scan_ok("courier1", "pickup", "CTA", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship, prc)
    await world.ok("pharm", "POST", f"/api/v1/shipments/{ship}/receipt", 201, json=_receipt("accept"))
    await world.scan_ok("pharm", "store", "USZ", prc, storage_location="LN2-1")
    monkeypatch.setattr(chain, "now", lambda: registered + timedelta(days=2))
    body = refused(await world.scan("pharm", "dispense", "USZ", prc), 409, "expired")
    assert "expired at" in body["detail"]
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{prc}"))["status"] == "stored"


async def test_a_case_is_completed_by_its_infusion_and_then_takes_no_further_steps(client):
    world = await build_world(client)
    coi, bag = await bag_at_bedside(world)
    signed = _signatures(("pharm", "verified at bedside"), ("pharm2", "administered"))
    await world.scan_ok("pharm", "infuse", "USZ", f"&/{coi}", bag, signatures=signed)
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{coi}"))["status"] == "completed"
    # The apheresis bag left at manufacturing cannot be moved on a completed case...
    aph = f"{coi}-APH-01"
    body = refused(await world.scan("mfg", "store", "CTA", aph, storage_location="LN2-9"), 409, "case_closed")
    assert "completed" in body["detail"]
    # ...but what is left can be destroyed, and the record replays to the same completed case.
    await world.scan_ok("mfg", "dispose", "CTA", aph, reason="case completed; starting material not needed")
    assert (await world.ok("admin", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True


async def test_a_cancelled_case_is_signed_with_a_reason_and_refuses_custody_steps(client):
    world = await build_world(client)
    coi, aph, ship = await _case_with_packed_shipment(world)
    path = f"/api/v1/cases/{coi}/cancel"
    wrong = await world.call("coord", "POST", path, json={"reason": "patient withdrew", "password": "guess"})
    assert wrong.status_code == 422, wrong.text
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{coi}"))["status"] == "open"
    # A pharmacist may not cancel a case at all.
    nurse = await world.call("nurse", "POST", path, json={"reason": "patient withdrew", "password": PASSWORD})
    assert nurse.status_code == 403, nurse.text
    await world.ok(
        "coord", "POST", path, 201, json={"reason": "patient withdrew consent", "password": PASSWORD}
    )
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{coi}"))["status"] == "cancelled"
    again = await world.call("coord", "POST", path, json={"reason": "again", "password": PASSWORD})
    assert again.status_code == 409
    refused(await world.scan("nurse", "pack", "USZ-APH", ship, aph), 409, "case_closed")
    last = (await _events(world, coi))[-2]
    assert last["action"] == "case_cancelled"
    assert (await world.ok("admin", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True


async def _trail(world: World, action: str) -> list[dict]:
    return [
        e
        for e in await world.ok("admin", "GET", "/api/v1/audit", params={"limit": 500})
        if e["action"] == action
    ]


async def test_refusals_that_are_not_custody_steps_are_kept_in_the_audit_trail(client):
    world = await build_world(client)
    coi, prc = await released_bag(world)
    # A route the caller's role does not allow: a courier tries a QA release.
    guarded = await world.call(
        "courier1", "POST", f"/api/v1/units/{prc}/release", json={"password": PASSWORD}
    )
    assert guarded.status_code == 403
    [entry] = await _trail(world, "access_refused")
    assert (entry["actor"], entry["entity"], entry["entity_id"]) == ("courier1", "route", "releaseUnit")
    assert entry["new_value"]["method"] == "POST"
    # The trail keeps the operation, not the ids typed into the path.
    assert prc not in str(entry)
    # A wrong password on a QA release.
    qa_prc = await world.unit("mfg", coi, "PRC", "CTA")
    await world.scan_ok("mfg", "label", "CTA", qa_prc)
    wrong = await world.call("qa", "POST", f"/api/v1/units/{qa_prc}/release", json={"password": "not it"})
    assert wrong.status_code == 422
    assert [e["new_value"]["why"] for e in await _trail(world, "signature_refused")] == ["wrong_password"]
    # A hand-over confirmed by someone other than its receiver.
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship, prc)
    await world.scan_ok("courier1", "pickup", "CTA", ship)
    await world.scan_ok("courier1", "handover", "CRX", ship, handover_to="courier2")
    handover = (await world.ok("courier2", "GET", f"/api/v1/shipments/{ship}"))["pending_handover"]
    refused_confirm = await world.call("courier1", "POST", f"/api/v1/handovers/{handover}/confirm")
    assert refused_confirm.status_code == 403
    [confirm] = await _trail(world, "handover_confirmation_refused")
    assert (confirm["actor"], confirm["entity_id"]) == ("courier1", str(handover))
    assert confirm["new_value"]["why"] == "not the named receiver"
    await world.ok("courier2", "POST", f"/api/v1/handovers/{handover}/confirm", 201)


async def test_qa_puts_a_unit_on_hold_and_releases_it_each_signed(client):
    world = await build_world(client)
    coi, prc = await released_bag(world)
    hold = f"/api/v1/units/{prc}/hold"
    reason = {"reason": "sterility result pending", "password": PASSWORD}
    # Not QA, or not the right password: nothing changes.
    assert (await world.call("mfg", "POST", hold, json=reason)).status_code == 403
    wrong = await world.call("qa", "POST", hold, json={"reason": "pending", "password": "guess"})
    assert wrong.status_code == 422
    assert (await world.ok("mfg", "GET", f"/api/v1/units/{prc}"))["quarantined"] is False
    await world.ok("qa", "POST", hold, 201, json=reason)
    assert (await world.ok("mfg", "GET", f"/api/v1/units/{prc}"))["quarantined"] is True
    assert (await world.call("qa", "POST", hold, json=reason)).status_code == 409
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    refused(await world.scan("mfg", "pack", "CTA", ship, prc), 409, "quarantined")
    # The hold is the record's: the scan's state check and the replay agree with the table.
    assert (await world.ok("admin", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True
    released = {"reason": "sterility negative", "password": PASSWORD}
    await world.ok("qa", "POST", f"/api/v1/units/{prc}/hold/release", 201, json=released)
    await world.scan_ok("mfg", "pack", "CTA", ship, prc)
    events = [(e["action"], e["outcome"]) for e in await _events(world, coi)]
    assert ("hold", "accepted") in events
    assert ("hold_released", "accepted") in events
    assert (await world.ok("admin", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True


async def test_a_hold_lifted_in_the_table_alone_stops_the_next_scan(client, database_url):
    world = await build_world(client)
    coi, prc = await released_bag(world)
    await world.ok(
        "qa", "POST", f"/api/v1/units/{prc}/hold", 201, json={"reason": "pending", "password": PASSWORD}
    )
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE units SET quarantined = false WHERE id = $1", prc)
    finally:
        await conn.close()
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    body = refused(await world.scan("mfg", "pack", "CTA", ship, prc), 409, "record_mismatch")
    assert "quarantined in its record" in body["detail"]


async def test_qa_records_a_deviation_linked_to_the_events_it_concerns(client):
    world = await build_world(client)
    coi, prc = await released_bag(world)
    release = next(e for e in await _events(world, coi) if e["action"] == "release")
    body = {
        "description": "label reprinted after a smudge",
        "impact": "none: identity verified against the batch record",
        "disposition": "use as is",
        "event_ids": [release["id"]],
        "password": PASSWORD,
    }
    path = f"/api/v1/cases/{coi}/deviations"
    assert (await world.call("mfg", "POST", path, json=body)).status_code == 403
    # An event of another case is not one of this case's.
    other = await world.new_case()
    foreign = (await _events(world, other))[0]["id"]
    answer = await world.call("qa", "POST", path, json=body | {"event_ids": [foreign]})
    assert answer.status_code in (404, 422), answer.text
    await world.ok("qa", "POST", path, 201, json=body)
    [deviation] = [e for e in await _events(world, coi) if e["action"] == "deviation"]
    assert deviation["data"]["events"] == [release["id"]]
    assert deviation["data"]["disposition"] == "use as is"
    assert [s["meaning"] for s in deviation["signatures"]] == ["deviation recorded"]
    assert (await world.ok("admin", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True
    _ = prc


async def test_a_correction_keeps_the_corrected_values_in_the_audit_trail(client):
    world = await build_world(client)
    coi, _bag = await stored_bag(world)
    store = [e for e in await _events(world, coi) if e["action"] == "store"][-1]
    body = {"reason": "stored in the second dewar, not the first", "fields": {"storage_location": "LN2-2"}}
    await world.ok("coord", "POST", f"/api/v1/events/{store['id']}/corrections", 201, json=body)
    [entry] = await _trail(world, "correct")
    assert entry["entity_id"] == str(store["id"])
    assert entry["old_value"] == {"storage_location": "LN2-1"}
    assert entry["new_value"] == {"storage_location": "LN2-2"}
