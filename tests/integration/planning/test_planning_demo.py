"""The demo's planning data: CTA with capacity, two hospitals' apheresis units with slots, completed
cases whose KPIs come from their record, the cases in flight planned with actual dates, bookings ahead;
every chain verifies, and a second seed adds nothing."""

from __future__ import annotations

from backend.db.pool import create_pool
from backend.db.repo import users
from backend.demo import seed
from backend.services import auth, chain_verify
from backend.services.planning import bookings, kpis


async def test_demo_plans_and_kpis(database_url):
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        await seed(pool)
        counts = await pool.fetchrow(
            """SELECT (SELECT count(*) FROM manufacturing_capacity WHERE site = 'CTA') AS capacity,
                      (SELECT count(DISTINCT site) FROM collection_slots) AS slot_sites,
                      (SELECT count(*) FROM bookings WHERE status = 'active') AS bookings,
                      (SELECT count(*) FROM cases) AS cases,
                      -- the product kinds' demo (a batch, its recipients, a trial case just opened) has no
                      -- collection to book: tests/integration/test_demo_kinds.py
                      (SELECT count(*) FROM cases
                        WHERE product_kind = 'autologous' AND trial_register IS NULL) AS planned_cases"""
        )
        await seed(pool)
        assert await pool.fetchval("SELECT count(*) FROM cases") == counts["cases"]
        assert counts["capacity"] == 1
        assert counts["slot_sites"] == 2
        # Six completed, three in flight, three booked ahead: every case has its plan.
        assert counts["bookings"] == counts["planned_cases"] == 12
        async with pool.acquire() as conn:
            row = await users.by_username(conn, "coordinator")
        assert row is not None
        who = auth.principal_of(row)
        figures = await kpis.kpis(pool, who)
        assert figures.vein_to_vein.cases == 6
        assert {g.site for g in figures.vein_to_vein_by_site} == {"USZ", "KSW"}
        assert figures.turnaround.median_days is not None
        assert 14 <= figures.turnaround.median_days <= 17
        assert any(lane.on_time < lane.arrived for lane in figures.lanes)
        in_flight = await pool.fetch("SELECT coi FROM cases WHERE patient_ref LIKE 'DEMO-0%' ORDER BY coi")
        plan = await bookings.plan(pool, who, in_flight[-1]["coi"])
        done = {m.milestone for m in plan.milestones if m.actual_at is not None}
        assert {"collection", "shipment_to_manufacturing", "manufacturing_start", "release"} <= done
        assert all(m.planned_at is not None for m in plan.milestones)
        async with pool.acquire() as conn:
            for case in await conn.fetch("SELECT coi FROM cases"):
                verdict = await chain_verify.verify(conn, case["coi"])
                assert verdict.ok, (case["coi"], verdict.message)
    finally:
        await pool.close()
