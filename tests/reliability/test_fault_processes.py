"""Processes killed with SIGKILL under load, then started again as an operator (or systemd) would:
the bridge mid-stream, and the backend while ingest batches and a courier's scans are in flight (a
request rolled back, or committed with its answer lost). The bridge replays from the broker and its disk
buffer, the phone resends with the same idempotency keys; everything is stored once, the excursions
alert once, every chain verifies. (tests/integration/telemetry covers the readings alone with a shared
broker; these add scans, alerts and chains.)"""

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


def test_bridge_and_backend_killed_mid_stream(server_dir, artifacts_dir):
    pg = PrivatePostgres(server_dir / "pg")
    broker = PrivateMosquitto(server_dir / "mqtt")
    pg.start()
    pg.create()
    broker.start()
    try:
        with system(server_dir, pg.url, broker.endpoint) as running:
            ships = fleet(running, 6)
            shipments = list(ships.shipments.values())

            # 1. The bridge, SIGKILLed with a quarter stored; the rest is published while it is dead.
            messages, expected = stream(ships, per_logger=500, per_message=5, spike_at=0.8)
            resume = threading.Event()
            with publisher(broker.endpoint) as pub:
                feeder = feed(pub, messages, resume)
                wait_stored(pg.url, ships.loggers, len(expected) // 4, 60, "a quarter of the readings stored")
                running.kill_bridge()
                resume.set()
                time.sleep(1)
                running.celltrail.start_bridge(broker.endpoint)
                feeder.join(120)
                assert pub.flush(60)
            wait_stored(pg.url, ships.loggers, len(expected), 120, "every reading after the bridge restart")
            counts = {
                **asyncio.run(readings_audit(pg.url, expected)),
                **asyncio.run(alerts_audit(pg.url, shipments)),
                **asyncio.run(chains_audit(pg.url)),
                **healthy(running, ships.canary),
            }
            record(artifacts_dir, "bridge-sigkill", **counts)
            check_counts(counts, len(expected))

            # 2. The backend, SIGKILLed while ingest batches and pickup scans are in flight.
            messages2, expected2 = stream(ships, per_logger=500, per_message=5, spike_at=None, first=500)
            cases = list(ships.cases.values())
            before = asyncio.run(events_per_case(pg.url, cases))
            phone = running.device("courier1")
            resume = threading.Event()
            with publisher(broker.endpoint) as pub:
                feeder = feed(pub, messages2, resume)
                for ship in shipments[:3]:
                    phone.scan("pickup", "USZ-APH", ship)
                phone.drain(60)
                wait_stored(
                    pg.url, ships.loggers, len(expected) + len(expected2) // 4, 60, "ingest under way"
                )
                for ship in shipments[3:]:
                    phone.scan("pickup", "USZ-APH", ship)
                scanning = threading.Thread(target=phone.drain, args=(120,), daemon=True)
                scanning.start()
                time.sleep(0.02)  # the first of these scans is on the wire (or just answered)
                running.kill_backend()
                resume.set()
                time.sleep(1)
                running.start_backend()
                feeder.join(120)
                scanning.join(120)
                assert pub.flush(60)
            everything = {**expected, **expected2}
            wait_stored(
                pg.url, ships.loggers, len(everything), 120, "every reading after the backend restart"
            )
            counts = {
                **asyncio.run(readings_audit(pg.url, everything)),
                **asyncio.run(scans_audit(pg.url, phone.keys, cases, before)),
                "refused": len(phone.refused()),
                "scan_resends": sum(scan.attempts - 1 for scan in phone.accepted()),
                **asyncio.run(alerts_audit(pg.url, shipments)),
                **asyncio.run(chains_audit(pg.url)),
                **healthy(running, ships.canary),
            }
            phone.close()
            record(artifacts_dir, "backend-sigkill-mid-request", **counts)
            check_counts(counts, len(everything))
            assert counts["refused"] == 0
            assert counts["scans_stored"] == counts["scans_sent"] == counts["scan_events"] == len(shipments)
            assert counts["scan_duplicates"] == 0
    finally:
        broker.stop()
        pg.stop("immediate")
