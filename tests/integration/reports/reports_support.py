"""Shared pieces of the record and EPCIS tests: one database, app and client per test module (logins are
slow), and one full vein-to-vein case with loggers, readings, an excursion, alerts handled by people, a
refused scan and a correction."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import load_settings
from tests.conftest import ADMIN_PASSWORD
from tests.integration.journey import PASSWORD, World, build_world

SPECS = Path(__file__).resolve().parents[2] / "fixtures" / "epcis"
CTA_GLN = "7612345000015"
CHECKLIST = {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True}


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="module")
async def module_database(postgres_url: str, template_database: str) -> AsyncIterator[str]:
    name = f"celltrail_reports_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    finally:
        await conn.close()
    yield _with_database(postgres_url, name)
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def module_client(
    module_database: str, mqtt_broker: Any, record_key_file: Path
) -> AsyncIterator[AsyncTestClient[Any]]:
    # The session's record key: the journey is recorded once for the module, and each test verifies it
    # with the keyring the autouse fixture configures.
    settings = load_settings(
        {},
        database_url=module_database,
        mqtt_url=mqtt_broker.url,
        admin_password=ADMIN_PASSWORD,
        log_format="text",
        broker_check_seconds=5,
        record_key_file=str(record_key_file),
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


@dataclass
class Case:
    coi: str
    aph: str
    prc: str
    ship1: str
    ship2: str
    refused_event: int
    label_event: int


async def sql(database_url: str, statement: str, *args: Any) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(statement, *args)
    finally:
        await conn.close()


async def world_with_loggers(client: Any, database_url: str) -> World:
    world = await build_world(client)
    await sql(database_url, "UPDATE sites SET gln = $1 WHERE code = 'CTA'", CTA_GLN)
    await sql(
        database_url,
        # Calibrated for a year: an uncalibrated logger would (rightly) raise an alert of its own.
        """INSERT INTO loggers (id, owner_site, calibration_due)
           VALUES ('LGR-T1', 'CRX', current_date + 365), ('LGR-T2', 'CTA', current_date + 365),
                  ('LGR-T3', NULL, current_date + 365)""",
    )
    return world


async def add_readings(database_url: str, logger_id: str, shipment_id: str, temps: list[float]) -> datetime:
    """One reading every 5 minutes ending now; returns the first reading's time."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5 * len(temps))
    await sql(
        database_url,
        """INSERT INTO readings (logger_id, ts, temp_c, battery_pct, shipment_id)
           SELECT $1, $2::timestamptz + (i - 1) * interval '5 minutes', t, 90, $3
           FROM unnest($4::real[]) WITH ORDINALITY AS u(t, i)""",
        logger_id,
        start,
        shipment_id,
        temps,
    )
    return start


def _packed_an_hour_ago() -> str:
    """Packed offline an hour ago: a leg's readings are those from packing to receipt (issue 20), and
    `add_readings` dates them in the hour before now."""
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


async def accept_receipt(world: World, who: str, shipment: str) -> None:
    await world.ok(
        who,
        "POST",
        f"/api/v1/shipments/{shipment}/receipt",
        201,
        json={"decision": "accept", "password": PASSWORD, "checklist": CHECKLIST},
    )


async def full_case(world: World, database_url: str) -> Case:
    coi = await world.new_case()
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship1 = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph], logger_id="LGR-T1")
    await world.scan_ok("nurse", "pack", "USZ-APH", ship1, aph, device_time=_packed_an_hour_ago())
    refused = await world.scan("courier1", "pickup", "CTA", ship1)
    assert refused.status_code == 409, refused.text
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship1)
    await world.scan_ok("courier1", "handover", "CRX", ship1, handover_to="courier2")
    pending = await world.ok("courier1", "GET", f"/api/v1/shipments/{ship1}")
    await world.ok("courier2", "POST", f"/api/v1/handovers/{pending['pending_handover']}/confirm", 201)
    # Fresh starting material, 2-8 °C, with a 15-minute warm spell.
    await add_readings(database_url, "LGR-T1", ship1, [5.0, 5.5, 6.0, 11.5, 12.0, 11.0, 6.5, 5.5, 5.0, 4.5])
    await world.scan_ok("mfg", "receive", "CTA", ship1)
    await world.scan_ok("mfg", "receive", "CTA", ship1, aph)
    await accept_receipt(world, "mfg", ship1)

    prc = await world.unit("mfg", coi, "PRC", "CTA")
    await world.scan_ok("mfg", "label", "CTA", prc)
    await world.ok("qa", "POST", f"/api/v1/units/{prc}/release", 201, json={"password": PASSWORD})
    ship2 = await world.shipment("mfg", coi, "CTA", "USZ", [prc], profile="cryo", logger_id="LGR-T2")
    await world.scan_ok("mfg", "pack", "CTA", ship2, prc, device_time=_packed_an_hour_ago())
    await world.scan_ok("courier2", "pickup", "CTA", ship2)
    await add_readings(database_url, "LGR-T2", ship2, [-182.0, -181.5, -180.75, -181.0])
    await world.scan_ok("pharm", "receive", "USZ", ship2)
    await world.scan_ok("pharm", "receive", "USZ", ship2, prc)
    await accept_receipt(world, "pharm", ship2)
    await world.scan_ok("pharm", "store", "USZ", prc, storage_location="LN2 freezer 2, rack B, box 4")
    await world.scan_ok("pharm", "dispense", "USZ", prc)
    await world.scan_ok("pharm", "thaw", "USZ", prc)
    await world.scan_ok(
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

    # The warm spell raised a temperature alert: acknowledged by the coordinator, closed by QA.
    rows = await sql(
        database_url,
        """INSERT INTO alerts (kind, severity, title, detail, coi, shipment_id, logger_id, sites,
                               condition_key, started_at, peak_value)
           VALUES ('temperature_high', 'critical', 'Too warm', 'above 8 °C for 15 min', $1, $2, 'LGR-T1',
                   ARRAY['USZ-APH', 'CTA'], 'temp:' || $2, now() - interval '30 minutes', 12.0)
           RETURNING id""",
        coi,
        ship1,
    )
    alert_id = rows[0]["id"]
    await world.ok(
        "coord", "POST", f"/api/v1/alerts/{alert_id}/acknowledge", 201, json={"comment": "looking"}
    )
    await world.ok(
        "qa", "POST", f"/api/v1/alerts/{alert_id}/close", 201, json={"reason": "within stability data"}
    )
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    label = next(e for e in timeline["events"] if e["action"] == "label")
    refused_event = next(e for e in timeline["events"] if e["outcome"] == "refused")
    await world.ok(
        "coord",
        "POST",
        f"/api/v1/events/{label['id']}/corrections",
        201,
        json={"reason": "label printed with the wrong expiry", "fields": {"expiry": "2026-12-01"}},
    )
    return Case(coi, aph, prc, ship1, ship2, refused_event["id"], label["id"])


async def world_and_case(client: Any, database_url: str) -> tuple[World, Case]:
    world = await world_with_loggers(client, database_url)
    return world, await full_case(world, database_url)
