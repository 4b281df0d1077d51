"""Data gaps end to end with nothing stood in: a logger publishing over MQTT to a private Mosquitto, the
real bridge and backend, the live stream. The logger stops publishing: it is reported silent. It comes
back with a live reading: the hole is a data-gap notice ("no data from ... to ..."), not time at the
last temperature. Then it flushes its memory, shuffled and with repeats: the gap is withdrawn, the
backlog's warm spell is evaluated and alerts, and the minutes per day count it once."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from alerting_stack import BRIDGE_PASSWORD, Stack, Watcher

from firmware_bridge import topics
from firmware_bridge.mqtt_clients import Publisher
from firmware_bridge.settings import load_settings
from tests.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.slow
LOGGER = "LGR-E2EGAP"
SHIPMENT = "SHP-2026-000778"


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
    pub = Publisher(endpoint, f"gap-pub-{uuid.uuid4().hex[:8]}")
    assert pub.start(10.0), "publisher could not connect"
    yield pub
    pub.stop()


def message(readings: list[tuple[datetime, float]]) -> bytes:
    return json.dumps(
        {
            "logger_id": LOGGER,
            "readings": [{"ts": ts.isoformat().replace("+00:00", "Z"), "temp_c": t} for ts, t in readings],
        }
    ).encode()


async def prepare(api: httpx.AsyncClient, database_url: str, departed: datetime) -> dict[str, str]:
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
    # Declared through the API: one reading a minute.
    logger = {"id": LOGGER, "owner_site": "CTA", "issue_broker_password": False, "sample_interval_s": 60}
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
               SELECT $3, $1, 'CTA', 'USZ', 'DRY-1', $2, code, version, definition, $4,
                      now() + interval '1 day', $4, 'in_transit'
               FROM temperature_profiles WHERE code = 'cryo' AND version = 1""",
            coi,
            LOGGER,
            SHIPMENT,
            departed,
        )
    finally:
        await conn.close()
    return coord


async def test_a_logger_that_stops_publishing_then_flushes_its_backlog(stack, publisher, database_url):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=45)
    stack.start_backend(
        CELLTRAIL_LOGGER_SILENT_MINUTES="5",
        CELLTRAIL_HOUSEKEEPING_SECONDS="1",
        # A gap notice waits for the gap to settle; a short wait keeps the test short.
        CELLTRAIL_GAP_SETTLE_SECONDS="3",
    )
    topic = topics.telemetry_topic(LOGGER)
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as api:
        coord = await prepare(api, database_url, start)
        stack.start_bridge()
        watcher = Watcher(api, coord)
        try:
            await watcher.opened.wait()
            # Ten minutes of cold readings, then nothing: out of coverage.
            for minute in range(10):
                publisher.publish(topic, message([(start + timedelta(minutes=minute), -190.0)]))
            silent = await watcher.wait_for("the silence", 30, event="opened", alert_kind="logger_silent")
            assert silent["shipment_id"] == SHIPMENT

            # Back in coverage: the live reading first. The hole is a gap notice, not 35 minutes at -190 °C.
            publisher.publish(topic, message([(start + timedelta(minutes=45), -190.0)]))
            gap = await watcher.wait_for("the gap notice", 30, event="opened", alert_kind="data_gap")
            assert (gap["severity"], gap["status"]) == ("info", "resolved")
            assert gap["started_at"].startswith((start + timedelta(minutes=9)).isoformat()[:16])
            await watcher.wait_for("the silence's end", 30, id=silent["id"], event="resolved")
            assert not [e for e in watcher.events if e.get("alert_kind") == "temperature_high"]

            # Then the logger flushes its memory of the hole, in shuffled messages, some twice: eight
            # minutes above -150 °C in it (the cryogenic profile's 5-minute rule).
            backlog = [
                (start + timedelta(minutes=m), -140.0 if 20 <= m < 28 else -190.0) for m in range(10, 45)
            ]
            chunks = [backlog[i : i + 5] for i in range(0, len(backlog), 5)]
            chunks += random.Random(20).sample(chunks, 3)
            random.Random(5).shuffle(chunks)
            for chunk in chunks:
                publisher.publish(topic, message(chunk))
            await watcher.wait_for("the gap withdrawn", 30, id=gap["id"], event="withdrawn")
            excursion = await watcher.wait_for(
                "the backlog's excursion", 30, event="opened", alert_kind="temperature_high"
            )
            assert excursion["severity"] == "critical"
            assert excursion["started_at"].startswith((start + timedelta(minutes=20)).isoformat()[:16])

            summary = (await api.get(f"/api/v1/shipments/{SHIPMENT}/temperature", headers=coord)).json()
            assert summary["readings"] == 46
            assert summary["uncovered_minutes"] == 0.0
            assert summary["gaps"] == []
            assert summary["minutes_beyond"]["high"] == 8.0
            assert sum(d["minutes_beyond"].get("high", 0.0) for d in summary["daily"]) == 8.0
            opened_temperature = [
                e
                for e in watcher.events
                if e.get("alert_kind") == "temperature_high" and e.get("event") == "opened"
            ]
            assert len(opened_temperature) == 1  # repeats and shuffling raise it once
        finally:
            await watcher.close()
