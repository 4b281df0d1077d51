"""Profiles (versioned, audited, snapshotted by shipments) and the temperature summaries of a shipment
and of a case, with who may see them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alerting_support import BASE, ingest, insert_shipment, readings, setup_accounts

from backend.services.excursions import evaluate_after_ingest
from tests.integration.helpers import make_user

LOGGER = "LGR-SUMMARY"
ADMIN2_PASSWORD = "second admin password"
NEW_FRESH = {
    "low_c": 2.0,
    "high_c": 8.0,
    "critical_low_c": 0.0,
    "critical_high_c": 12.0,
    "consecutive_minutes": 15,
    "mkt_hours": 24,
}


async def test_profiles_are_listed_versioned_audited_and_snapshotted(client, pool):
    who = await setup_accounts(client, [], people=("coord", "courier"))
    second_admin = await make_user(
        client, who["admin"], "admin2", ["admin"], ["CTA"], password=ADMIN2_PASSWORD
    )
    listed = (await client.get("/api/v1/profiles", headers=who["courier"])).json()
    assert {p["code"] for p in listed} >= {"fresh", "crt", "cryo", "cryo-130", "cryo-120"}
    fresh = next(p for p in listed if p["code"] == "fresh")
    assert fresh["rules"] == [
        "warning: outside the range for 30 min cumulative",
        "critical: below 0 °C at once",
        "critical: above 15 °C at once",
    ]
    assert (fresh["owner_site"], fresh["status"], fresh["approved_version"]) == (None, "approved", 1)
    async with pool.acquire() as conn:
        old_leg, _ = await insert_shipment(conn, None)

    # Neither a courier nor (since issue 17) a coordinator proposes versions.
    for person in ("courier", "coord"):
        refused = await client.post(
            "/api/v1/profiles/fresh/versions",
            headers=who[person],
            json={"name": "x", "definition": NEW_FRESH},
        )
        assert refused.status_code == 403, refused.text
    # A network profile: an administrator proposes, a second administrator approves.
    created = await client.post(
        "/api/v1/profiles/fresh/versions",
        headers=who["admin"],
        json={"name": "Fresh, tighter", "definition": NEW_FRESH, "reason": "therapy label update"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["version"], body["versions"], body["status"], body["approved_version"]) == (
        2,
        [1, 2],
        "pending",
        1,
    )
    assert "critical: above 12 °C at once" in body["rules"]
    # Pending: the profile still stands for version 1, and new shipments take version 1.
    assert (await client.get("/api/v1/profiles/fresh", headers=who["courier"])).json()["version"] == 1
    async with pool.acquire() as conn:
        pending_leg, _ = await insert_shipment(conn, None)
    approved = await client.post(
        "/api/v1/profiles/fresh/versions/2/approve",
        headers=second_admin,
        json={"password": ADMIN2_PASSWORD, "reason": "checked against the label"},
    )
    assert approved.status_code == 201, approved.text
    assert approved.json()["signature"]["meaning"] == "released"
    assert (await client.get("/api/v1/profiles/fresh", headers=who["courier"])).json()["version"] == 2
    first = (await client.get("/api/v1/profiles/fresh/versions/1", headers=who["courier"])).json()
    assert first["definition"]["critical_high_c"] == 15.0

    async with pool.acquire() as conn:
        new_leg, _ = await insert_shipment(conn, None)
        snapshots = dict(await conn.fetch("SELECT id, profile_version FROM shipments"))
    assert (snapshots[old_leg], snapshots[pending_leg], snapshots[new_leg]) == (1, 1, 2)

    audit = (await client.get("/api/v1/audit?entity=temperature_profile", headers=who["admin"])).json()
    assert [(e["action"], e["entity_id"], e["actor"], e["reason"]) for e in audit] == [
        ("approve", "fresh v2", "admin2", "checked against the label"),
        ("create", "fresh v2", "admin", "therapy label update"),
    ]
    assert audit[1]["old_value"]["critical_high_c"] == 15.0
    # A network profile concerns no one site: its entries are the administrators'.
    assert [e["sites"] for e in audit] == [[], []]


async def test_profile_definitions_are_checked(client):
    who = await setup_accounts(client, [], people=("qa",))
    for code, definition, status in [
        ("custom-1", {"low_c": 8.0, "high_c": 2.0}, 422),
        ("custom-1", {"high_c": 8.0, "surprise": 1}, 422),
        ("Not A Code", {"high_c": 8.0}, 422),
        ("custom-1", {"high_c": -60.0, "consecutive_minutes": 10}, 201),
    ]:
        response = await client.post(
            f"/api/v1/profiles/{code}/versions",
            headers=who["qa"],
            json={"name": "custom", "definition": definition},
        )
        assert response.status_code == status, (definition, response.text)
    # A new code belongs to the proposer's only site.
    assert response.json()["owner_site"] == "CRX"


async def test_shipment_and_case_temperature_summaries(client, pool):
    who = await setup_accounts(client, [LOGGER], people=("bridge", "coord", "outsider"))
    async with pool.acquire() as conn:
        shipment, coi = await insert_shipment(conn, LOGGER)
    # Every 5 minutes: 45 min at 9 °C (cumulative rule fires), 10 min below 2 °C, spanning midnight in
    # the sending site's time zone (Europe/Zurich, UTC+1 in January): its calendar days are the summary's.
    start = BASE.replace(hour=22, minute=0)
    temps = [5.0] * 6 + [9.0] * 9 + [5.0] * 3 + [1.0] * 2 + [5.0] * 4
    await ingest(client, who["bridge"], readings(LOGGER, temps, start=start))
    await evaluate_after_ingest(pool, set(), {LOGGER})

    response = await client.get(f"/api/v1/shipments/{shipment}/temperature", headers=who["coord"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["readings"], body["min_c"], body["max_c"]) == (len(temps), 1.0, 9.0)
    assert body["mean_c"] == pytest.approx(sum(temps) / len(temps))
    assert body["mkt_c"] is not None
    assert body["minutes_beyond"] == {"low": 10.0, "high": 45.0, "critical_low": 0.0, "critical_high": 0.0}
    day1, day2 = (start.date().isoformat(), (start + timedelta(days=1)).date().isoformat())
    assert [(d["day"], d["minutes_beyond"].get("high")) for d in body["daily"]] == [
        (day1, 30.0),
        (day2, 15.0),
    ]
    # The 30-minute budget is spent on the high side, so the dip below 2 °C alerts at once.
    assert [(a["kind"], a["severity"]) for a in body["alerts"]] == [
        ("temperature_high", "warning"),
        ("temperature_low", "warning"),
    ]

    hidden = await client.get(f"/api/v1/shipments/{shipment}/temperature", headers=who["outsider"])
    assert hidden.status_code == 404
    case = await client.get(f"/api/v1/cases/{coi}/temperature", headers=who["coord"])
    assert case.status_code == 200, case.text
    assert [s["shipment_id"] for s in case.json()["shipments"]] == [shipment]
    assert case.json()["open_alerts"] == 0  # the excursion ended at 00:15
    assert (await client.get(f"/api/v1/cases/{coi}/temperature", headers=who["outsider"])).status_code == 404
