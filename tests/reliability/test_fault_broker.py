"""The MQTT broker restarted while loggers stream readings: the loggers' unacknowledged messages are sent
again after the reconnect, the bridge's persistent session (kept on disk by Mosquitto) delivers what was
queued for it, and the backend's broker probe turns healthy again by itself."""

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
    feed,
    fleet,
    healthy,
    publisher,
    readings_audit,
    stream,
    system,
    wait_stored,
)

pytestmark = pytest.mark.slow


def test_broker_restarted_during_ingest(server_dir, artifacts_dir):
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
                broker.stop()
                resume.set()  # the loggers keep measuring: their messages wait in the client
                time.sleep(3)
                degraded = running.health()
                broker.start()
                feeder.join(120)
                assert pub.flush(90), "the broker confirmed every message after its restart"
            wait_stored(pg.url, ships.loggers, len(expected), 120, "every reading after the broker returned")
            counts = {
                **asyncio.run(readings_audit(pg.url, expected)),
                **asyncio.run(alerts_audit(pg.url, list(ships.shipments.values()))),
                **asyncio.run(chains_audit(pg.url)),
                **healthy(running, ships.canary),
            }
            record(artifacts_dir, "broker-restart-ingest", **counts)
            assert degraded.get("status") == "degraded", degraded  # /healthz saw the broker gone
            check_counts(counts, len(expected))
    finally:
        broker.stop()
        pg.stop("immediate")
