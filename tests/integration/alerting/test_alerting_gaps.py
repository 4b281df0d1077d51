"""Issue 20, finding 3, on real PostgreSQL through the ingest endpoint: a backlog with a six-hour hole
right after a high reading raises no temperature alert, only a data-gap notice; the summary counts
covered time only and names the gap; a declared sampling interval makes the first hour a gap too."""

from __future__ import annotations

from datetime import timedelta

from alerting_support import alerts_of, ingest, insert_shipment, readings, setup_accounts

from backend.services.excursions import evaluate_after_ingest

LOGGER = "LGR-GAPS01"


async def test_finding_3_a_six_hour_hole_at_a_high_reading_is_a_gap_not_350_minutes_above(client, pool):
    who = await setup_accounts(client, [LOGGER])
    async with pool.acquire() as conn:
        shipment, _coi = await insert_shipment(conn, LOGGER)
    before = readings(LOGGER, [5.0] * 11 + [9.0])  # 5-minute samples, the last one high
    hole_end = before[-1].ts + timedelta(hours=6)
    after = readings(LOGGER, [5.0] * 12, start=hole_end)
    await ingest(client, who["bridge"], after + before)  # one backlog, out of order
    await evaluate_after_ingest(pool, set(), {LOGGER})

    [notice] = await alerts_of(pool, shipment)
    assert (notice.kind, notice.severity, notice.status) == ("data_gap", "info", "resolved")
    assert (notice.started_at, notice.ended_at) == (before[-1].ts, hole_end)
    assert "no data from" in notice.detail

    summary = (await client.get(f"/api/v1/shipments/{shipment}/temperature", headers=who["coord"])).json()
    assert summary["minutes_beyond"]["high"] == 0.0
    assert summary["uncovered_minutes"] == 360.0
    [gap] = summary["gaps"]
    assert gap["minutes"] == 360.0
    assert gap["text"].startswith("no data from 2026-01-10T08:55")
    assert all(day["minutes_beyond"].get("high", 0.0) == 0.0 for day in summary["daily"])


async def test_finding_3_a_declared_interval_makes_one_high_reading_and_an_hour_of_nothing_a_gap(
    client, pool
):
    who = await setup_accounts(client, [LOGGER])
    async with pool.acquire() as conn:
        await conn.execute("UPDATE loggers SET sample_interval_s = 300 WHERE id = $1", LOGGER)
        shipment, _coi = await insert_shipment(conn, LOGGER)
    await ingest(client, who["bridge"], readings(LOGGER, [9.0, 5.0], every_minutes=60))
    await evaluate_after_ingest(pool, set(), {LOGGER})
    assert [(a.kind, a.status) for a in await alerts_of(pool, shipment)] == [("data_gap", "resolved")]
    summary = (await client.get(f"/api/v1/shipments/{shipment}/temperature", headers=who["coord"])).json()
    assert (summary["minutes_beyond"]["high"], summary["uncovered_minutes"]) == (0.0, 60.0)
