"""Helpers for the alerting tests: accounts and a registered logger through the API, shipments written
with SQL (any profile, any times), readings stored through the real ingest endpoint, and a pool for
calling the services directly."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from backend.db.repo import alerts as alerts_repo
from backend.db.repo.alerts import AlertRow
from firmware_bridge.ingest_contract import IngestBatch, IngestReading
from tests.integration.helpers import admin, make_site, make_user
from tests.integration.telemetry.telemetry_support import post_batch

BASE = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def minutes_ago(minutes: float) -> datetime:
    """For tests the periodic checks look at: their shipments must be neither late nor silent by accident."""
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)


PEOPLE = {
    "bridge": (["bridge"], ["CRX"]),
    "coord": (["coordinator"], ["CRX", "USZ"]),
    "qa": (["qa"], ["CRX"]),
    "courier": (["courier"], ["CRX"]),
    "outsider": (["coordinator"], ["CTA"]),
}


async def setup_accounts(
    client: Any, loggers: list[str], people: tuple[str, ...] = ("bridge", "coord")
) -> dict[str, dict[str, str]]:
    """Sites CRX (sender), USZ (receiver) and CTA, the admin, the named people of PEOPLE (each account
    costs a password hash, so only those asked for), and the loggers registered."""
    root = await admin(client)
    await make_site(client, root, "CRX", kind="courier_depot")
    await make_site(client, root, "USZ")
    await make_site(client, root, "CTA", kind="manufacturing")
    who = {"admin": root}
    for name in people:
        roles, sites = PEOPLE[name]
        who[name] = await make_user(client, root, name, roles, sites)
    for logger_id in loggers:
        response = await client.post(
            "/api/v1/loggers",
            headers=root,
            json={"id": logger_id, "owner_site": "CRX", "issue_broker_password": False},
        )
        assert response.status_code == 201, response.text
    return who


async def insert_shipment(
    conn: asyncpg.Connection,
    logger_id: str | None,
    *,
    profile: str = "fresh",
    departure: datetime = BASE,
    arrival: datetime | None = None,
    departed_at: datetime | None = BASE,
    received_at: datetime | None = None,
    status: str = "in_transit",
) -> tuple[str, str]:
    """A case and a shipment from CRX to USZ with the newest approved version of `profile`; returns
    (shipment, coi)."""
    n = next(_numbers)
    coi = f"CHA999926{uuid.uuid4().hex[:6].upper()}"
    shipment_id = f"SHP-2026-{n:06d}"
    creator = await conn.fetchval("SELECT id FROM users WHERE username = 'admin'")
    await conn.execute(
        "INSERT INTO cases (coi, treatment_site, therapy, created_by) VALUES ($1, 'USZ', 'CAR-T', $2)",
        coi,
        creator,
    )
    await conn.execute(
        """INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code,
                                  profile_version, profile, planned_departure, planned_arrival,
                                  departed_at, received_at, status)
           SELECT $1, $2, 'CRX', 'USZ', 'BOX-1', $3, code, version, definition, $4, $5, $6, $7, $8
           FROM temperature_profiles WHERE code = $9 AND status = 'approved' ORDER BY version DESC LIMIT 1""",
        shipment_id,
        coi,
        logger_id,
        departure,
        arrival or departure + timedelta(days=2),
        departed_at,
        received_at,
        status,
        profile,
    )
    return shipment_id, coi


def readings(
    logger_id: str, temps: list[float], start: datetime = BASE, every_minutes: float = 5, **extra: Any
) -> list[IngestReading]:
    return [
        IngestReading(
            logger_id=logger_id,
            ts=start + timedelta(minutes=every_minutes * i),
            temp_c=t,
            received_at=start + timedelta(minutes=every_minutes * i),
            **extra,
        )
        for i, t in enumerate(temps)
    ]


async def ingest(client: Any, headers: dict[str, str], batch: list[IngestReading]) -> dict[str, int]:
    """Through POST /api/v1/ingest/telemetry, as the bridge delivers them."""
    return await post_batch(
        client,
        headers,
        IngestBatch(
            batch_id=uuid.uuid4().hex, bridge_id="test", readings=batch, statuses=[], dead_letters=[]
        ),
    )


async def alerts_of(pool: Any, shipment_id: str) -> list[AlertRow]:
    async with pool.acquire() as conn:
        rows = await alerts_repo.list_for(conn, None, None, None, shipment_id, 1000)
    return sorted(rows, key=lambda a: (a.started_at, a.id))
