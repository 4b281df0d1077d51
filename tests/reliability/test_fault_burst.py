"""100,000 backlog readings at once: twenty loggers coming back into coverage flush 5,000 readings each
(about three hours at one reading every 2 s) in 500-reading messages, shuffled so legs arrive out of
order. Every reading is stored once, each shipment's one excursion alerts once however the backlog
arrived, and the system is healthy afterwards. The time it took is printed, not asserted."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.reliability.fault_counts import record
from tests.reliability.fault_stack import (
    PrivateMosquitto,
    PrivatePostgres,
    alerts_audit,
    chains_audit,
    check_counts,
    fleet,
    healthy,
    publisher,
    readings_audit,
    stream,
    system,
    wait_stored,
)

pytestmark = pytest.mark.slow
LOGGERS = 20
PER_LOGGER = 5_000


def test_a_burst_of_100000_backlog_readings(server_dir, artifacts_dir):
    pg = PrivatePostgres(server_dir / "pg")
    broker = PrivateMosquitto(server_dir / "mqtt")
    pg.start()
    pg.create()
    broker.start()
    try:
        with system(server_dir, pg.url, broker.endpoint) as running:
            ships = fleet(running, LOGGERS, hours_ago=3.0)
            messages, expected = stream(ships, per_logger=PER_LOGGER, per_message=500, spike_at=0.5)
            random.Random(11).shuffle(messages)
            assert len(expected) == 100_000
            started = time.monotonic()
            with publisher(broker.endpoint) as pub:
                for topic, payload in messages:
                    pub.publish(topic, payload)
                assert pub.flush(120)
            wait_stored(pg.url, ships.loggers, len(expected), 240, "the whole backlog stored")
            seconds = time.monotonic() - started
            counts = {
                **asyncio.run(readings_audit(pg.url, expected)),
                "seconds": round(seconds, 1),
                **asyncio.run(alerts_audit(pg.url, list(ships.shipments.values()))),
                **asyncio.run(chains_audit(pg.url)),
                **healthy(running, ships.canary),
            }
            record(artifacts_dir, "burst-100k-backlog", **counts)
            check_counts(counts, len(expected))
    finally:
        broker.stop()
        pg.stop("immediate")
