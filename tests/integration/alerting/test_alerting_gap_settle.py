"""Gap notices do not flap: a logger flushing its memory in shuffled pieces shows holes in the first
pieces that the next ones fill. A notice waits CELLTRAIL_GAP_SETTLE_SECONDS after the reading that ends
its gap arrived, so a hole a later piece fills is never announced (nor withdrawn); a hole that stays is
announced once the wait is over (the periodic sweep's evaluation)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from alerting_support import BASE, alerts_of, ingest, insert_shipment, setup_accounts

from backend.services import excursions
from backend.services.excursions import evaluate_after_ingest
from firmware_bridge.ingest_contract import IngestReading

LOGGER = "LGR-SETTLE1"
SETTLE_S = 1.5


def _arriving_now(minutes: range, temp: float = 5.0) -> list[IngestReading]:
    now = datetime.now(UTC)
    return [
        IngestReading(logger_id=LOGGER, ts=BASE + timedelta(minutes=m), temp_c=temp, received_at=now)
        for m in minutes
    ]


async def _gap_alerts(pool, shipment):
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT started_at, status, withdrawn_at FROM alerts"
            " WHERE shipment_id = $1 AND kind = 'data_gap'",
            shipment,
        )
    return [(r["started_at"], r["status"], r["withdrawn_at"] is not None) for r in rows]


async def test_a_shuffled_backlog_raises_no_gap_notice_and_a_hole_that_stays_raises_one(client, pool):
    who = await setup_accounts(client, [LOGGER])
    async with pool.acquire() as conn:
        await conn.execute("UPDATE loggers SET sample_interval_s = 60 WHERE id = $1", LOGGER)
        shipment, _coi = await insert_shipment(conn, LOGGER)
    excursions.configure(3.0, SETTLE_S)
    try:
        # Two hours a minute apart, flushed in twelve shuffled pieces, some twice, each evaluated as it
        # lands (as the ingest endpoint does): the early pieces have holes between them.
        pieces = [range(m, m + 10) for m in range(0, 120, 10)]
        pieces += random.Random(3).sample(pieces, 4)
        random.Random(8).shuffle(pieces)
        for piece in pieces:
            await ingest(client, who["bridge"], _arriving_now(piece))
            await evaluate_after_ingest(pool, set(), {LOGGER})
        await asyncio.sleep(SETTLE_S + 0.2)
        await excursions.sweep(pool)
        assert await _gap_alerts(pool, shipment) == []

        # Then a real hole: twenty minutes without data. Held first, announced once it settled.
        await ingest(client, who["bridge"], _arriving_now(range(140, 150)))
        await evaluate_after_ingest(pool, set(), {LOGGER})
        assert await _gap_alerts(pool, shipment) == []
        await asyncio.sleep(SETTLE_S + 0.2)
        await excursions.sweep(pool)
        assert await _gap_alerts(pool, shipment) == [(BASE + timedelta(minutes=119), "resolved", False)]
        [notice] = [a for a in await alerts_of(pool, shipment) if a.kind == "data_gap"]
        assert "no data from" in notice.detail
        await excursions.sweep(pool)
        assert len(await _gap_alerts(pool, shipment)) == 1
    finally:
        excursions.configure(3.0)
