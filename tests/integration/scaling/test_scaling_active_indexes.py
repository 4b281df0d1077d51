"""Work in flight is read through indexes of work in flight: with thousands of finished shipments (and
their closed alerts and readings) stored, the hot queries read the partial indexes of migration 0040 and
never pass over `shipments` or `readings` whole. Plan shape, not timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from scaling_support import Recorder, explain, load_history, scans, whole_passes

from backend.db.repo import board, monitoring, readings, shipments

LOGGERS = 200
LEGS = 20


@pytest.fixture
async def history(database_url: str) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        await load_history(conn, loggers=LOGGERS, legs=LEGS, reading_loggers=20)
        # The history is older than the partitions the template database was given: its readings went
        # to the default partition; give them their months, as housekeeping would have.
        oldest = await conn.fetchval("SELECT min(ts) FROM readings")
        await conn.execute("SELECT ensure_readings_partitions(2, $1)", oldest)
        assert await conn.fetchval("SELECT count(*) FROM readings_default") == 0
        await conn.execute("ANALYZE")
        finished = await conn.fetchval("SELECT count(*) FROM shipments WHERE status = 'received'")
        assert finished == LOGGERS * LEGS
        yield conn
    finally:
        await conn.close()


async def _recorded(call: Any) -> tuple[str, tuple[Any, ...]]:
    recorder = Recorder()
    await call(recorder)
    assert len(recorder.calls) == 1
    return recorder.calls[0]


def _reads_only_through(plan: list[dict[str, Any]], table: str, index: str) -> None:
    used = scans(plan, table)
    assert index in used, used
    assert not [s for s in used if s.startswith("Seq Scan")], used


async def test_board_reads_the_index_of_active_shipments(history):
    sql, args = await _recorded(lambda c: board.active(c, None, 200))
    plan = await explain(history, sql, args)
    _reads_only_through(plan, "shipments", "shipments_active")
    assert await whole_passes(history, plan, "readings") == []


async def test_active_shipment_list_reads_the_index_of_active_shipments(history):
    sql, args = await _recorded(lambda c: shipments.list_for(c, None, True, 100))
    _reads_only_through(await explain(history, sql, args), "shipments", "shipments_active")


async def test_silent_legs_read_the_index_of_active_shipments(history):
    since = datetime.now(UTC) - timedelta(minutes=30)
    sql, args = await _recorded(lambda c: monitoring.silent_legs(c, since))
    plan = await explain(history, sql, args)
    _reads_only_through(plan, "shipments", "shipments_active")
    assert await whole_passes(history, plan, "readings") == []


async def test_open_alerts_of_a_kind_read_the_index_of_open_alerts(history):
    sql, args = await _recorded(lambda c: monitoring.open_of_kind(c, "logger_silent"))
    plan = await explain(history, sql, args)
    _reads_only_through(plan, "alerts", "alerts_open_kind")
    assert await whole_passes(history, plan, "shipments") == []


async def test_ingest_looks_up_a_readings_leg_by_the_index_of_its_filter(history):
    # One reading per logger now and a second ago: every logger has twenty finished legs behind it.
    now = datetime.now(UTC)
    loggers = [f"LGR-H{1 + i % LOGGERS}" for i in range(2 * LOGGERS)]
    times = [now - timedelta(seconds=i // LOGGERS) for i in range(2 * LOGGERS)]
    columns = readings.ReadingColumns(
        logger_id=loggers,
        ts=times,
        temp_c=[-160.0] * len(loggers),
        battery_pct=[90] * len(loggers),
        lid_open=[False] * len(loggers),
        received_at=times,
    )
    recorder = Recorder()
    await readings.insert_batch(recorder, columns, "batch-1", "bridge-1")
    [(sql, args)] = recorder.calls
    # Explained with ANALYZE, so the statement runs: rolled back after (readings are append-only).
    transaction = history.transaction()
    await transaction.start()
    try:
        plan = await explain(history, sql, args, analyze=True)
        stored = await history.fetch(
            """SELECT r.logger_id, s.status FROM readings r JOIN shipments s ON s.id = r.shipment_id
               WHERE r.ts >= $1""",
            now - timedelta(seconds=1),
        )
    finally:
        await transaction.rollback()
    assert "shipments_leg_lookup" in scans(plan, "shipments")
    assert await whole_passes(history, plan, "shipments") == []
    # Each logger's look-up finds its leg under way and nothing of its finished past.
    lookups = [
        n
        for n in plan
        if n["Node Type"] in ("Bitmap Heap Scan", "Index Scan")
        and n.get("Relation Name") == "shipments"
        and scans([n, *n.get("Plans", [])], "shipments") == ["shipments_leg_lookup"]
    ]
    assert lookups
    assert all(n["Actual Rows"] <= 1 and n.get("Rows Removed by Filter", 0) == 0 for n in lookups), lookups
    # Every reading went to its logger's leg under way.
    assert len(stored) == 2 * LOGGERS
    assert {r["status"] for r in stored} == {"in_transit"}


async def test_a_loggers_newest_reading_is_looked_up_only_in_the_months_that_matter(history):
    # Readings of the history's first logger span past months; its silence began an hour ago.
    months = await history.fetch(
        """SELECT DISTINCT tableoid::regclass::text AS part FROM readings
           WHERE logger_id = 'LGR-H1' AND ts < date_trunc('month', now())"""
    )
    if not months:
        pytest.skip("the generated history lies within the current month")
    await history.execute(
        """INSERT INTO alerts (kind, severity, status, title, detail, shipment_id, logger_id, sites,
                               condition_key, started_at)
           SELECT 'logger_silent', 'warning', 'open', 'silent', 'silent', id, logger_id, '{}',
                  'logger_silent:' || id, now() - interval '1 hour'
           FROM shipments WHERE logger_id = 'LGR-H1' AND status = 'in_transit'"""
    )
    silent_before = datetime.now(UTC) - timedelta(minutes=30)
    for call in (
        lambda c: monitoring.open_of_kind(c, "logger_silent"),
        lambda c: monitoring.silent_legs(c, silent_before),
    ):
        sql, args = await _recorded(call)
        plan = await explain(history, sql, args, analyze=True)
        probed = {
            n["Relation Name"]
            for n in plan
            if str(n.get("Relation Name", "")).startswith("readings_") and n.get("Actual Loops", 0) > 0
        }
        assert not probed & {m["part"] for m in months}, probed
