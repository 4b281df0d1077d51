"""End to end with nothing stood in: a logger's readings published over MQTT to a private Mosquitto, the
real bridge, the real backend: the excursion alert opens and streams to an SSE client, a coordinator
acknowledges it, and it resolves when the temperature is back, every step seen on the stream."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from alerting_stack import BRIDGE_PASSWORD, Stack, Watcher, wired

from firmware_bridge import topics
from firmware_bridge.mqtt_clients import Publisher
from firmware_bridge.settings import load_settings
from tests.conftest import ADMIN_PASSWORD

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not wired(), reason="ingest does not call evaluate_after_ingest yet"),
]
LOGGER = "LGR-E2EALERT"


@pytest.fixture
def stack(database_url: str, mqtt_broker, server_dir: Path) -> Iterator[Stack]:
    running = Stack(server_dir, database_url, mqtt_broker.url)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def publisher(mqtt_broker) -> Iterator[Publisher]:
    endpoint = load_settings(env={}, mqtt_url=mqtt_broker.url).mqtt_endpoint()
    pub = Publisher(endpoint, f"alerting-pub-{uuid.uuid4().hex[:8]}")
    assert pub.start(10.0), "publisher could not connect"
    yield pub
    pub.stop()


def message(readings: list[tuple[datetime, float]]) -> bytes:
    return json.dumps(
        {
            "logger_id": LOGGER,
            "readings": [{"ts": ts.isoformat().replace("+00:00", "Z"), "temp_c": t} for ts, t in readings],
            "battery_pct": 80,
        }
    ).encode()


async def prepare(api: httpx.AsyncClient, database_url: str) -> tuple[dict[str, str], str]:
    """Sites, the bridge's and a coordinator's accounts, the logger (API), and a cryogenic shipment
    carrying it, departed ten minutes ago (SQL)."""
    login = await api.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    root = {"Authorization": f"Bearer {login.json()['token']}"}
    for code in ("CTA", "USZ"):
        site = {"code": code, "name": code, "kind": "hospital", "time_zone": "Europe/Zurich"}
        assert (await api.post("/api/v1/sites", headers=root, json=site)).status_code == 201
    for username, roles in (("bridge", ["bridge"]), ("coord", ["coordinator"])):
        user = {
            "username": username,
            "full_name": username.title(),
            "password": BRIDGE_PASSWORD,
            "roles": roles,
            "sites": ["CTA", "USZ"],
        }
        assert (await api.post("/api/v1/users", headers=root, json=user)).status_code == 201
    logger = {"id": LOGGER, "owner_site": "CTA", "issue_broker_password": False}
    assert (await api.post("/api/v1/loggers", headers=root, json=logger)).status_code == 201
    login = await api.post("/api/v1/auth/login", json={"username": "coord", "password": BRIDGE_PASSWORD})
    coord = {"Authorization": f"Bearer {login.json()['token']}"}

    conn = await asyncpg.connect(database_url)
    try:
        coi = f"CHA999926{uuid.uuid4().hex[:6].upper()}"
        admin_id = await conn.fetchval("SELECT id FROM users WHERE username = 'admin'")
        await conn.execute(
            "INSERT INTO cases (coi, treatment_site, therapy, created_by) VALUES ($1, 'USZ', 'CAR-T', $2)",
            coi,
            admin_id,
        )
        await conn.execute(
            """INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code,
                                      profile_version, profile, planned_departure, planned_arrival,
                                      departed_at, status)
               SELECT 'SHP-2026-000777', $1, 'CTA', 'USZ', 'DRY-1', $2, code, version, definition,
                      now() - interval '10 minutes', now() + interval '1 day', now() - interval '10 minutes',
                      'in_transit'
               FROM temperature_profiles WHERE code = 'cryo' AND version = 1""",
            coi,
            LOGGER,
        )
    finally:
        await conn.close()
    return coord, "SHP-2026-000777"


async def test_an_excursion_published_over_mqtt_opens_streams_is_acknowledged_and_resolves(
    stack, publisher, database_url
):
    stack.start_backend()
    topic = topics.telemetry_topic(LOGGER)
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as api:
        coord, shipment = await prepare(api, database_url)
        stack.start_bridge()
        watcher = Watcher(api, coord)
        try:
            await watcher.opened.wait()
            now = datetime.now(UTC).replace(microsecond=0)
            # Cold for three minutes, then six minutes above -150 °C: the 5-minute consecutive rule fires.
            cold = [(now - timedelta(minutes=9 - i), -190.0) for i in range(3)]
            warm = [(now - timedelta(minutes=6 - i), -140.0 + i) for i in range(7)]
            publisher.publish(topic, message(cold))
            for reading in warm:
                publisher.publish(topic, message([reading]))
            opened = await watcher.wait_for(
                "the excursion alert", 30, event="opened", alert_kind="temperature_high"
            )
            assert (opened["severity"], opened["status"], opened["shipment_id"]) == (
                "critical",
                "open",
                shipment,
            )
            assert opened["peak_value"] == -134.0

            ack = await api.post(
                f"/api/v1/alerts/{opened['id']}/acknowledge", headers=coord, json={"comment": "refilling LN2"}
            )
            assert ack.status_code == 201, ack.text
            await watcher.wait_for("the acknowledgement", 15, id=opened["id"], status="acknowledged")

            back = now + timedelta(minutes=1)
            publisher.publish(topic, message([(back, -185.0)]))
            resolved = await watcher.wait_for("the resolution", 30, id=opened["id"], event="resolved")
            assert resolved["ended_at"].startswith(back.isoformat().replace("+00:00", ""))
        finally:
            await watcher.close()
        alerts = (await api.get(f"/api/v1/alerts?shipment_id={shipment}", headers=coord)).json()
    [alert] = [a for a in alerts if a["kind"] == "temperature_high"]
    assert (alert["status"], alert["acknowledged_by"], alert["ack_comment"]) == (
        "resolved",
        "coord",
        "refilling LN2",
    )
