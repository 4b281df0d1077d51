"""The logger registry: registration with a working broker credential, site rules, audited changes, the
logger's state and reading history, and the calibration check."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import asyncpg
import paho.mqtt.client as mqtt
import pytest
from telemetry_support import (
    BASE,
    batch,
    insert_shipment,
    mosquitto,
    post_batch,
    reading,
    register,
    setup_accounts,
)

from backend.domain.errors import NotFound
from backend.services.loggers import calibration_alert_needed
from tests.integration.helpers import assert_problem, make_user


def _connect_code(url: str, username: str, password: str) -> int:
    """The CONNACK reason code Mosquitto answers for these credentials (0 = accepted)."""
    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{username}-{threading.get_ident()}")
    client.username_pw_set(username, password)
    codes: list[int] = []
    answered = threading.Event()

    def on_connect(_c, _u, _f, reason_code, _p):
        codes.append(reason_code.value)
        answered.set()

    client.on_connect = on_connect
    client.connect(host, int(port))
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
    finally:
        client.loop_stop()
        client.disconnect()
    return codes[0]


async def test_registration_issues_a_broker_password_mosquitto_accepts(client, database_url, server_dir):
    who = await setup_accounts(client)
    response = await client.post(
        "/api/v1/loggers",
        headers=who["admin"],
        json={
            "id": "LGR-0100",
            "model": "Tempod 3",
            "firmware": "1.4.2",
            "calibration_due": "2027-01-31",
            "owner_site": "CRX",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    password, line = body["broker_password"], body["mosquitto_passwd_line"]
    assert line.startswith("LGR-0100:$7$101$")
    assert body["logger"]["broker_password_set_at"] is not None
    conn = await asyncpg.connect(database_url)
    try:
        kept = await conn.fetchval("SELECT broker_password_hash FROM loggers WHERE id = 'LGR-0100'")
    finally:
        await conn.close()
    assert kept.startswith("$argon2id$")
    assert password not in kept

    (server_dir / "passwd").write_text(line + "\n")
    with mosquitto(server_dir / "broker", f"password_file {server_dir / 'passwd'}") as url:
        assert _connect_code(url, "LGR-0100", password) == 0
        assert _connect_code(url, "LGR-0100", password + "x") != 0

    rotated = await client.post(
        "/api/v1/loggers/LGR-0100/broker-password", headers=who["admin"], json={"reason": "logger lost"}
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["broker_password"] != password


async def test_registration_refuses_duplicates_bad_ids_and_unknown_sites(client):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0101")
    again = await client.post("/api/v1/loggers", headers=who["admin"], json={"id": "LGR-0101"})
    assert_problem(again, 409, "already registered")
    bad = await client.post("/api/v1/loggers", headers=who["admin"], json={"id": "logger-1"})
    assert_problem(bad, 400)
    nowhere = await client.post(
        "/api/v1/loggers", headers=who["admin"], json={"id": "LGR-0102", "owner_site": "NOPE"}
    )
    assert_problem(nowhere, 422, "unknown site")


async def test_coordinators_manage_only_the_loggers_of_their_sites(client):
    who = await setup_accounts(client)
    coordinator = who["coordinator"]
    await register(client, who["admin"], "LGR-0200", owner_site="USZ")
    await register(client, coordinator, "LGR-0201", owner_site="CRX")
    elsewhere = await client.post(
        "/api/v1/loggers", headers=coordinator, json={"id": "LGR-0202", "owner_site": "USZ"}
    )
    assert_problem(elsewhere, 403, "USZ")
    ownerless = await client.post("/api/v1/loggers", headers=coordinator, json={"id": "LGR-0203"})
    assert_problem(ownerless, 403)

    listed = await client.get("/api/v1/loggers", headers=coordinator)
    assert [item["id"] for item in listed.json()] == ["LGR-0201"]
    everything = await client.get("/api/v1/loggers", headers=who["admin"])
    assert [item["id"] for item in everything.json()] == ["LGR-0200", "LGR-0201"]
    for path in ("", "/readings"):
        hidden = await client.get(f"/api/v1/loggers/LGR-0200{path}", headers=coordinator)
        assert_problem(hidden, 404, "LGR-0200")
    give_away = await client.patch(
        "/api/v1/loggers/LGR-0201", headers=coordinator, json={"owner_site": "USZ", "reason": "moved"}
    )
    assert_problem(give_away, 403)
    courier = await make_user(client, who["admin"], "carl", ["courier"], ["CRX"])
    assert_problem(await client.get("/api/v1/loggers", headers=courier), 403, "coordinator")
    assert_problem(await client.get("/api/v1/loggers"), 401)


async def test_changes_are_audited_with_old_and_new_values_and_the_reason(client):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0300", calibration_due="2026-06-30", firmware="1.0")
    changed = await client.patch(
        "/api/v1/loggers/LGR-0300",
        headers=who["coordinator"],
        json={"calibration_due": "2027-06-30", "firmware": "1.1", "reason": "recalibrated by the lab"},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["calibration_due"], changed.json()["firmware"]) == ("2027-06-30", "1.1")
    cleared = await client.patch(
        "/api/v1/loggers/LGR-0300",
        headers=who["admin"],
        json={"calibration_due": None, "active": False, "reason": "sent back to the vendor"},
    )
    assert (cleared.json()["calibration_due"], cleared.json()["active"]) == (None, False)
    no_reason = await client.patch("/api/v1/loggers/LGR-0300", headers=who["admin"], json={"active": True})
    assert_problem(no_reason, 400, "reason")

    trail = await client.get("/api/v1/audit?entity=logger&entity_id=LGR-0300", headers=who["admin"])
    entries = trail.json()
    assert [e["action"] for e in entries] == ["update", "update", "create"]
    assert entries[1]["actor"] == "coord"
    assert entries[1]["reason"] == "recalibrated by the lab"
    assert entries[1]["old_value"]["calibration_due"] == "2026-06-30"
    assert entries[1]["new_value"]["calibration_due"] == "2027-06-30"
    assert entries[0]["new_value"]["active"] is False


async def test_detail_shows_last_reading_current_shipment_and_calibration(client, database_url):
    who = await setup_accounts(client)
    overdue = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    await register(client, who["admin"], "LGR-0400", calibration_due=overdue)
    await post_batch(client, who["bridge"], batch([reading("LGR-0400", m, 4.0 + m) for m in range(3)]))
    conn = await asyncpg.connect(database_url)
    try:
        shipment = await insert_shipment(
            conn, "LGR-0400", datetime.now(UTC) - timedelta(hours=2), departed_at=datetime.now(UTC)
        )
    finally:
        await conn.close()
    detail = (await client.get("/api/v1/loggers/LGR-0400", headers=who["coordinator"])).json()
    assert detail["last_reading"]["temp_c"] == 6.0
    assert detail["last_reading"]["ts"].startswith("2026-01-10T08:02:00")
    assert detail["current_shipment"]["id"] == shipment
    assert (detail["current_shipment"]["from_site"], detail["current_shipment"]["to_site"]) == ("CRX", "USZ")
    assert "was due for calibration on" in detail["calibration_problem"]


async def test_reading_history_is_bounded_by_since_until_and_limit(client):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0500")
    await post_batch(client, who["bridge"], batch([reading("LGR-0500", m, 3.0 + m / 10) for m in range(30)]))
    url = "/api/v1/loggers/LGR-0500/readings"
    window = {"since": "2026-01-10T08:10:00Z", "until": "2026-01-10T08:20:00Z"}
    rows = (await client.get(url, headers=who["coordinator"], params=window)).json()
    assert [r["ts"][11:16] for r in rows] == [f"08:{m}" for m in range(10, 20)]
    assert rows[0]["temp_c"] == 4.0
    limited = (await client.get(url, headers=who["admin"], params={**window, "limit": 3})).json()
    assert len(limited) == 3
    backwards = await client.get(
        url, headers=who["admin"], params={"since": window["until"], "until": window["since"]}
    )
    assert_problem(backwards, 422, "before")
    # Default: the last 24 hours, where this logger has nothing.
    assert (await client.get(url, headers=who["admin"])).json() == []


async def test_calibration_alert_needed_names_the_reason_or_none(client, database_url):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0600", calibration_due="2026-01-31")
    await register(client, who["admin"], "LGR-0601")
    conn = await asyncpg.connect(database_url)
    try:
        assert await calibration_alert_needed(conn, "LGR-0600", BASE) is None
        on_the_day = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
        assert await calibration_alert_needed(conn, "LGR-0600", on_the_day) is None
        late = await calibration_alert_needed(conn, "LGR-0600", datetime(2026, 2, 2, 9, 0, tzinfo=UTC))
        assert late == "logger LGR-0600 was due for calibration on 2026-01-31 (2 days ago)"
        missing = await calibration_alert_needed(conn, "LGR-0601", BASE)
        assert missing == "logger LGR-0601 has no calibration due date on record"
        with pytest.raises(NotFound):
            await calibration_alert_needed(conn, "LGR-0602", BASE)
    finally:
        await conn.close()
