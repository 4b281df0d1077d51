"""A courier's phone and the manufacturing desk scanner offline for an hour of scans, with clocks that
are wrong: the phone three hours ahead, the desk two hours behind; loggers whose clocks run ahead or
behind. Scans wait in the devices' on-disk queues, go out in order when the network returns (one answer
lost on the way and resent), and land once each, in the order they were made, with the device time kept
as the device said and the server's time in the chain. Logger readings from a clock within the bridge's
tolerance are stored; a clock far ahead is kept whole as a dead letter, never dropped."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from backend.embedded.ports import free_port
from bench.stack import wait
from firmware_bridge import topics
from tests.integration.scanner.lossy_proxy import LossyProxy
from tests.reliability.fault_counts import record
from tests.reliability.fault_stack import (
    Device,
    PrivateMosquitto,
    PrivatePostgres,
    chains_audit,
    count_readings,
    events_per_case,
    fleet,
    healthy,
    publisher,
    scans_audit,
    telemetry,
    wait_stored,
)
from tests.reliability.fault_stack import system as whole_system

pytestmark = pytest.mark.slow
PHONE_SKEW = timedelta(hours=3)
DESK_SKEW = timedelta(hours=-2)


async def _events(url: str, keys: list[str]) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(
            """SELECT e.coi, e.seq, e.action, e.device_time, e.server_time, r.idempotency_key
               FROM scan_requests r JOIN custody_events e ON e.id = (r.response->>'event_id')::bigint
               WHERE r.idempotency_key = ANY($1::text[]) ORDER BY e.coi, e.seq""",
            keys,
        )
    finally:
        await conn.close()


async def _dead_letters(url: str, logger: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch("SELECT kind, reason FROM dead_letters WHERE logger_id = $1", logger)
    finally:
        await conn.close()


def _offline_hour(
    phone: Device, desk: Device, ships: dict[str, str], bags: dict[str, str]
) -> dict[str, datetime]:
    """An hour of work while offline: pickups 5 minutes apart, then receipt of each shipment and bag."""
    start = datetime.now(UTC) - timedelta(hours=1)
    made: dict[str, datetime] = {}
    for n, ship in enumerate(ships.values()):
        at = start + timedelta(minutes=5 * n)
        made[phone.scan("pickup", "USZ-APH", ship, at=at)] = at + PHONE_SKEW
    for n, ship in enumerate(ships.values()):
        at = start + timedelta(minutes=30 + 8 * n)
        made[desk.scan("receive", "CTA", ship, at=at)] = at + DESK_SKEW
        at += timedelta(minutes=2)
        made[desk.scan("receive", "CTA", ship, bags[ship], at=at)] = at + DESK_SKEW
    return made


def test_devices_offline_for_an_hour_with_skewed_clocks(server_dir, artifacts_dir):
    pg = PrivatePostgres(server_dir / "pg")
    broker = PrivateMosquitto(server_dir / "mqtt")
    pg.start()
    pg.create()
    broker.start()
    try:
        with (
            whole_system(server_dir, pg.url, broker.endpoint) as running,
            LossyProxy(running.celltrail.url) as net,
        ):
            ships = fleet(running, 4)
            cases = list(ships.cases.values())
            phone = Device(server_dir / "phone", net.url, "courier1", PHONE_SKEW)
            desk = Device(server_dir / "desk", net.url, "mfg", DESK_SKEW)
            before = asyncio.run(events_per_case(pg.url, cases))

            net.upstream = f"http://127.0.0.1:{free_port()}"  # the network is gone
            made = _offline_hour(phone, desk, ships.shipments, running.extra["bags"])
            phone.sender.drain()
            desk.sender.drain()
            offline_attempts = sum(s.attempts for s in phone.queue.scans() + desk.queue.scans())
            assert phone.queue.count_pending() + desk.queue.count_pending() == len(made)

            net.upstream = running.celltrail.url  # back online; the first answer is lost on the way
            net.drop_next_scan = 1
            phone.drain(60)
            desk.drain(60)
            keys = phone.keys + desk.keys
            events = asyncio.run(_events(pg.url, keys))

            # Loggers with wrong clocks: 5 minutes ahead (within the bridge's 10-minute tolerance),
            # three days behind (history, before the shipment), and two hours ahead (refused whole).
            skewed = f"LGR-SKEW{uuid.uuid4().hex[:4].upper()}"
            running.world.ok(
                "admin",
                "POST",
                "/api/v1/loggers",
                201,
                json={"id": skewed, "owner_site": "CTA", "issue_broker_password": False},
            )
            now = datetime.now(UTC).replace(microsecond=0)
            ahead = [(now + timedelta(minutes=5, seconds=i), 5.0) for i in range(10)]
            behind = [(now - timedelta(days=3, seconds=-i), 5.0) for i in range(10)]
            far = [(now + timedelta(hours=2, seconds=i), 5.0) for i in range(10)]
            with publisher(broker.endpoint) as pub:
                for chunk in (ahead, behind, far):
                    pub.publish(topics.telemetry_topic(skewed), telemetry(skewed, chunk))
                assert pub.flush(20)
            wait_stored(pg.url, [skewed], 20, 60, "the readings of the skewed logger")
            wait(lambda: bool(asyncio.run(_dead_letters(pg.url, skewed))), 60, "the far-future message kept")
            letters = asyncio.run(_dead_letters(pg.url, skewed))

            counts = {
                **asyncio.run(scans_audit(pg.url, keys, cases, before)),
                "refused": len(phone.refused() + desk.refused()),
                "offline_attempts": offline_attempts,
                "answers_lost": 1 - net.drop_next_scan,
                "in_order": int(
                    all(
                        [e["action"] for e in events if e["coi"] == c] == ["pickup", "receive", "receive"]
                        for c in cases
                    )
                ),
                "device_time_kept": sum(1 for e in events if e["device_time"] == made[e["idempotency_key"]]),
                "readings_sent": 30,
                "readings_stored": asyncio.run(count_readings(pg.url, [skewed])),
                "readings_dead_lettered": 10 * len(letters),
                **asyncio.run(chains_audit(pg.url)),
                **healthy(running, ships.canary),
            }
            phone.close()
            desk.close()
            record(artifacts_dir, "offline-hour-clock-skew", **counts)
            assert counts["refused"] == 0, [
                json.loads(s.response or b"{}") for s in phone.refused() + desk.refused()
            ]
            assert counts["scans_stored"] == counts["scans_sent"] == counts["scan_events"] == len(made)
            assert counts["scan_duplicates"] == 0
            assert counts["in_order"] == 1
            assert counts["answers_lost"] == 1
            assert counts["readings_stored"] == len(ahead) + len(behind)
            assert counts["device_time_kept"] == len(made)
            # The chain's own clock is the server's: every event's server time is after the hour offline.
            assert all(e["server_time"] > now - timedelta(minutes=5) for e in events)
            assert [r["kind"] for r in letters] == ["future_ts"]
            assert counts["chains_verified"] == counts["chains"]
    finally:
        broker.stop()
        pg.stop("immediate")
