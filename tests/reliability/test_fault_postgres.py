"""PostgreSQL stopped and started again under the running system: first a clean restart while telemetry
streams in, then a crash (immediate shutdown, WAL recovery) while couriers and the pharmacy desk scan.
Nothing is lost, nothing is stored twice, every chain verifies and the system recovers by itself."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.reliability.fault_counts import record
from tests.reliability.fault_stack import (
    PrivateMosquitto,
    PrivatePostgres,
    alerts_audit,
    chains_audit,
    check_counts,
    events_per_case,
    feed,
    fleet,
    healthy,
    publisher,
    readings_audit,
    scans_audit,
    stream,
    system,
    wait_stored,
)

pytestmark = pytest.mark.slow
DOWN_SECONDS = 3.0


def test_postgres_restarted_during_ingest_and_during_scans(server_dir, artifacts_dir):
    pg = PrivatePostgres(server_dir / "pg")
    broker = PrivateMosquitto(server_dir / "mqtt")
    pg.start()
    pg.create()
    broker.start()
    try:
        with system(server_dir, pg.url, broker.endpoint) as running:
            ships = fleet(running, 6)
            messages, expected = stream(ships, per_logger=1000, per_message=5)
            resume = threading.Event()
            with publisher(broker.endpoint) as pub:
                feeder = feed(pub, messages, resume)
                wait_stored(pg.url, ships.loggers, len(expected) // 4, 60, "a quarter of the readings stored")
                pg.stop("fast")
                resume.set()  # the second half arrives while the database is away
                time.sleep(DOWN_SECONDS)
                pg.start()
                feeder.join(120)
                assert pub.flush(60)
            wait_stored(pg.url, ships.loggers, len(expected), 120, "every reading after the restart")
            health = healthy(running, ships.canary)
            counts = {
                **asyncio.run(readings_audit(pg.url, expected)),
                **asyncio.run(alerts_audit(pg.url, list(ships.shipments.values()))),
                **asyncio.run(chains_audit(pg.url)),
                **health,
            }
            record(artifacts_dir, "pg-restart-ingest", **counts)
            check_counts(counts, len(expected))

            # Now a crash while scanning: the courier's phone picks every shipment up, one by one.
            cases = list(ships.cases.values())
            before = asyncio.run(events_per_case(pg.url, cases))
            phone = running.device("courier1")
            desk = running.device("mfg")
            crashed = threading.Event()

            def pick_up() -> None:
                for n, ship in enumerate(ships.shipments.values()):
                    if n == 2:
                        crashed.wait(60)
                    phone.scan("pickup", "USZ-APH", ship)
                    phone.drain(120)

            courier = threading.Thread(target=pick_up, daemon=True)
            courier.start()
            wait_accepted = time.monotonic() + 60
            while len(phone.accepted()) < 2:
                assert time.monotonic() < wait_accepted, "two pickups accepted"
                time.sleep(0.05)
            pg.stop("immediate")
            crashed.set()  # the next pickups meet a database that is gone
            time.sleep(DOWN_SECONDS)
            pg.start()
            courier.join(120)
            for ship in ships.shipments.values():
                desk.scan("receive", "CTA", ship)
                desk.scan("receive", "CTA", ship, running.extra["bags"][ship])
            desk.drain(120)
            keys = phone.keys + desk.keys
            refused = phone.refused() + desk.refused()
            health = healthy(running, ships.canary)
            counts = {
                **asyncio.run(scans_audit(pg.url, keys, cases, before)),
                "refused": len(refused),
                **asyncio.run(chains_audit(pg.url)),
                **health,
            }
            phone.close()
            desk.close()
            record(artifacts_dir, "pg-restart-scans", **counts)
            assert counts["refused"] == 0, [(r.http_status, r.response) for r in refused]
            assert counts["scans_stored"] == counts["scans_sent"] == counts["scan_events"] == 3 * len(cases)
            assert counts["scan_duplicates"] == 0
            assert counts["chains_verified"] == counts["chains"]
    finally:
        broker.stop()
        pg.stop("immediate")
