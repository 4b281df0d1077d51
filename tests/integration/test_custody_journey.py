"""One case walked through the whole vein-to-vein journey over HTTP, with the right people at the right
sites; then the chain is verified and tampering is detected."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.journey import PASSWORD, build_world, starting_material_at_manufacturing


async def test_vein_to_vein_journey_and_tamper_detection(client, database_url):
    world = await build_world(client)

    # Collection -> transport (with a courier-to-courier hand-over) -> receipt at manufacturing.
    coi = await world.new_case()
    case = await world.ok("coord", "GET", f"/api/v1/cases/{coi}")
    assert case["barcode"] == f"&/{coi}"
    assert case["eye_readable"].endswith("]")
    assert case["patient_ref"] == "MRN-0042"  # the coordinator is at the treatment site
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    assert aph == f"{coi}-APH-01"
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship1 = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    packed = await world.scan_ok("nurse", "pack", "USZ-APH", ship1, aph)
    assert packed["shipment_status"] == "packed"
    picked = await world.scan_ok("courier1", "pickup", "USZ-APH", ship1)
    assert picked["shipment_status"] == "in_transit"
    await world.scan_ok("courier1", "handover", "CRX", ship1, handover_to="courier2")
    pending = await world.ok("courier1", "GET", f"/api/v1/shipments/{ship1}")
    assert pending["pending_handover_to"] == "courier2"
    await world.ok("courier2", "POST", f"/api/v1/handovers/{pending['pending_handover']}/confirm", 201)
    assert (await world.ok("courier2", "GET", f"/api/v1/shipments/{ship1}"))["holder"] == "Courier2"
    await world.scan_ok("mfg", "receive", "CTA", ship1)
    await world.scan_ok("mfg", "receive", "CTA", ship1, aph)
    await world.ok(
        "mfg",
        "POST",
        f"/api/v1/shipments/{ship1}/receipt",
        201,
        json={
            "decision": "accept",
            "password": PASSWORD,
            "checklist": {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True},
        },
    )

    # Manufacturing: the product bag inherits the COI; QA releases it with a signature.
    prc = await world.unit("mfg", coi, "PRC", "CTA")
    assert prc == f"{coi}-PRC-01"
    await world.scan_ok("mfg", "label", "CTA", prc)
    await world.ok("qa", "POST", f"/api/v1/units/{prc}/release", 201, json={"password": PASSWORD})

    # Cryo shipment back, pharmacy receipt with signature, storage.
    ship2 = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship2, prc)
    await world.scan_ok("courier2", "pickup", "CTA", ship2)
    await world.scan_ok("pharm", "receive", "USZ", ship2)
    desk = await world.ok("pharm", "GET", f"/api/v1/shipments/{ship2}/receipt")
    assert desk["expected"] == [prc]
    assert desk["missing"] == [prc]
    await world.scan_ok("pharm", "receive", "USZ", ship2, prc)
    await world.ok(
        "pharm",
        "POST",
        f"/api/v1/shipments/{ship2}/receipt",
        201,
        json={
            "decision": "accept",
            "password": PASSWORD,
            "checklist": {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True},
        },
    )
    stored = await world.scan_ok(
        "pharm", "store", "USZ", prc, storage_location="LN2 freezer 2, rack B, box 4"
    )
    assert stored["unit_statuses"][prc] == "stored"

    # Thaw and two-person bedside infusion: wristband + bag, two signatures.
    await world.scan_ok("pharm", "dispense", "USZ", prc)
    await world.scan_ok("pharm", "thaw", "USZ", prc)
    infused = await world.scan_ok(
        "pharm",
        "infuse",
        "USZ",
        f"&/{coi}",
        prc,
        signatures=[
            {"username": "pharm", "password": PASSWORD, "meaning": "verified at bedside"},
            {"username": "pharm2", "password": PASSWORD, "meaning": "administered"},
        ],
    )
    assert infused["unit_statuses"][prc] == "infused"

    unit = await world.ok("pharm", "GET", f"/api/v1/units/{prc}")
    assert unit["status"] == "infused"
    assert unit["storage_location"] == "LN2 freezer 2, rack B, box 4"

    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    actions = [e["action"] for e in timeline["events"]]
    assert actions[0] == "case_created"
    for step in (
        "label",
        "pack",
        "pickup",
        "handover",
        "handover_confirm",
        "receive",
        "receipt",
        "release",
        "store",
        "dispense",
        "thaw",
        "infuse",
    ):
        assert step in actions, step
    assert [e["seq"] for e in timeline["events"]] == list(range(1, len(actions) + 1))
    infusion = timeline["events"][-1]
    assert [(s["printed_name"], s["meaning"]) for s in infusion["signatures"]] == [
        ("Pharm", "verified at bedside"),
        ("Pharm2", "administered"),
    ]
    assert all(e["outcome"] == "accepted" for e in timeline["events"])

    verdict = await world.ok("qa", "GET", f"/api/v1/cases/{coi}/verify")
    assert verdict["ok"] is True
    assert verdict["events"] == len(actions)
    assert verdict["corrected"] is False

    # A superuser disables the trigger and edits a stored event: verify names the broken link.
    conn = await asyncpg.connect(database_url)
    try:
        with_seq = await conn.fetchval(
            "SELECT seq FROM custody_events WHERE coi = $1 AND action = 'receipt' ORDER BY seq LIMIT 1", coi
        )
        await conn.execute("ALTER TABLE custody_events DISABLE TRIGGER custody_events_append_only")
        await conn.execute(
            "UPDATE custody_events SET detail = 'nothing to see' WHERE coi = $1 AND seq = $2", coi, with_seq
        )
        await conn.execute("ALTER TABLE custody_events ENABLE TRIGGER custody_events_append_only")
    finally:
        await conn.close()
    tampered = await world.ok("qa", "GET", f"/api/v1/cases/{coi}/verify")
    assert tampered["ok"] is False
    assert tampered["first_break"]["seq"] == with_seq
    assert "changed after" in tampered["first_break"]["reason"]


async def test_custody_events_refuse_update_and_delete(client, database_url):
    world = await build_world(client)
    coi, _aph, _ship = await starting_material_at_manufacturing(world)
    conn = await asyncpg.connect(database_url)
    try:
        for statement in (
            "UPDATE custody_events SET detail = 'x' WHERE coi = $1",
            "DELETE FROM custody_events WHERE coi = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement, coi)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("DELETE FROM signatures")
    finally:
        await conn.close()


async def test_deleting_the_last_event_is_detected(client, database_url):
    world = await build_world(client)
    coi, _aph, _ship = await starting_material_at_manufacturing(world)
    conn = await asyncpg.connect(database_url)
    try:
        # A superuser can switch off every trigger and foreign key for the session.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("DELETE FROM custody_events WHERE id = (SELECT max(id) FROM custody_events)")
    finally:
        await conn.close()
    verdict = await world.ok("qa", "GET", f"/api/v1/cases/{coi}/verify")
    assert verdict["ok"] is False
    assert "chain head" in verdict["first_break"]["reason"]


async def test_correction_is_a_new_event_and_marks_the_record(client):
    world = await build_world(client)
    coi, _aph, _ship = await starting_material_at_manufacturing(world)
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    label = next(e for e in timeline["events"] if e["action"] == "label")
    await world.ok(
        "coord",
        "POST",
        f"/api/v1/events/{label['id']}/corrections",
        201,
        json={"reason": "label printed with the wrong expiry", "fields": {"expiry": "2026-12-01"}},
    )
    after = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    assert after["events"][:-1] == timeline["events"]  # nothing earlier changed
    assert after["events"][-1]["corrects"] == label["id"]
    verdict = await world.ok("qa", "GET", f"/api/v1/cases/{coi}/verify")
    assert verdict["ok"] is True
    assert verdict["corrected"] is True
    audit = await world.ok("admin", "GET", "/api/v1/audit", params={"entity": "custody_event"})
    assert audit[0]["reason"] == "label printed with the wrong expiry"
