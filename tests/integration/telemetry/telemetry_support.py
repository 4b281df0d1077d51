"""Helpers for the telemetry tests: accounts, logger registration, batches, and shipments written with
SQL straight into the custody tables (their columns as migration 0002 defines them)."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from firmware_bridge.ingest_contract import (
    CONTENT_TYPE,
    INGEST_PATH,
    DeadLetter,
    IngestBatch,
    IngestReading,
    LoggerStatus,
    encode_batch,
)
from tests.integration.helpers import admin, make_site, make_user

BASE = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
_shipments = itertools.count(1)


async def setup_accounts(client: Any) -> dict[str, dict[str, str]]:
    """Sites CRX and USZ, and headers for admin, the bridge account and a coordinator at CRX."""
    root = await admin(client)
    await make_site(client, root, "CRX", kind="courier_depot")
    await make_site(client, root, "USZ")
    return {
        "admin": root,
        "bridge": await make_user(client, root, "bridge", ["bridge"], ["CRX"]),
        "coordinator": await make_user(client, root, "coord", ["coordinator"], ["CRX"]),
    }


async def register(client: Any, headers: dict[str, str], logger_id: str, **fields: Any) -> dict[str, Any]:
    body = {"id": logger_id, "owner_site": "CRX", "issue_broker_password": False, **fields}
    response = await client.post("/api/v1/loggers", headers=headers, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def reading(logger_id: str, minute: int, temp_c: float, **extra: Any) -> IngestReading:
    ts = BASE + timedelta(minutes=minute)
    return IngestReading(logger_id=logger_id, ts=ts, temp_c=temp_c, received_at=ts, **extra)


def batch(
    readings: list[IngestReading] | None = None,
    statuses: list[LoggerStatus] | None = None,
    dead_letters: list[DeadLetter] | None = None,
    batch_id: str | None = None,
) -> IngestBatch:
    return IngestBatch(
        batch_id=batch_id or uuid.uuid4().hex,
        bridge_id="test-bridge",
        readings=readings or [],
        statuses=statuses or [],
        dead_letters=dead_letters or [],
    )


async def post_batch(
    client: Any, headers: dict[str, str], payload: IngestBatch, as_json: bool = False
) -> dict[str, int]:
    if as_json:
        body, content_type = msgspec.json.encode(payload), "application/json"
    else:
        body, content_type = encode_batch(payload), CONTENT_TYPE
    response = await client.post(
        INGEST_PATH,
        content=body,
        headers={**headers, "Content-Type": content_type, "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()
    return result


async def stored(conn: asyncpg.Connection, logger_id: str) -> list[tuple[datetime, float, str | None]]:
    rows = await conn.fetch(
        "SELECT ts, temp_c, shipment_id FROM readings WHERE logger_id = $1 ORDER BY ts", logger_id
    )
    return [(r["ts"], round(r["temp_c"], 2), r["shipment_id"]) for r in rows]


async def insert_shipment(
    conn: asyncpg.Connection,
    logger_id: str,
    planned_departure: datetime,
    *,
    departed_at: datetime | None = None,
    received_at: datetime | None = None,
    from_site: str = "CRX",
    to_site: str = "USZ",
    status: str | None = None,
) -> str:
    """A case and a shipment carrying `logger_id`, straight into the custody tables: in transit, or
    received when `received_at` is given."""
    n = next(_shipments)
    coi = f"CHTEST{uuid.uuid4().hex[:9].upper()}"
    shipment_id = f"SHP-2026-{n:06d}"
    creator = await conn.fetchval("SELECT id FROM users WHERE username = 'admin'")
    await conn.execute(
        "INSERT INTO cases (coi, treatment_site, therapy, created_by) VALUES ($1, $2, 'CAR-T', $3)",
        coi,
        to_site,
        creator,
    )
    await conn.execute(
        """INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code,
                                  profile_version, profile, planned_departure, planned_arrival,
                                  departed_at, received_at, status)
           SELECT $1, $2, $3, $4, 'BOX-1', $5, code, version, definition, $6::timestamptz,
                  $6::timestamptz + interval '1 day', $7, $8, $9
           FROM temperature_profiles WHERE code = 'fresh' AND version = 1""",
        shipment_id,
        coi,
        from_site,
        to_site,
        logger_id,
        planned_departure,
        departed_at,
        received_at,
        status or ("received" if received_at is not None else "in_transit"),
    )
    return shipment_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll until `condition` holds; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@contextmanager
def mosquitto(directory: Path, extra: str = "") -> Iterator[str]:
    """A private Mosquitto (persistence, TCP_NODELAY, unlimited queues); yields its mqtt:// URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (directory / "mosquitto.conf").write_text(
        "per_listener_settings true\n"
        f"listener {port} 127.0.0.1\n"
        f"allow_anonymous {'false' if 'password_file' in extra else 'true'}\n"
        f"{extra}\n"
        "persistence true\n"
        f"persistence_location {directory}/\n"
        "set_tcp_nodelay true\n"
        "max_queued_messages 0\n" + ("user root\n" if os.geteuid() == 0 else "")
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with (directory / "mosquitto.log").open("wb") as log:
        process = subprocess.Popen([binary, "-c", str(directory / "mosquitto.conf")], stdout=log, stderr=log)
    try:
        wait_for(lambda: _accepts(port) or process.poll() is not None, 10, "mosquitto to listen")
        assert process.poll() is None, (directory / "mosquitto.log").read_text()
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
