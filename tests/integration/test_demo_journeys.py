"""`celltrail up --demo` seeds three cases in flight, once, each box carrying a logger that plays the
right container, and every chain verifies."""

from __future__ import annotations

from backend.db.pool import create_pool
from backend.demo import DEMO_LOGGERS, _fleet_models, seed


async def test_demo_journeys_are_seeded_once_with_matching_loggers(database_url):
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await seed(pool)
        await seed(pool)
        # The journeys in flight; the planning demo's cases (patient refs DEMO-H.., DEMO-B..) are tested in
        # tests/integration/planning/test_planning_demo.py.
        journeys = "SELECT coi FROM cases WHERE patient_ref LIKE 'DEMO-0%'"
        shipments = await pool.fetch(
            "SELECT id, from_site, to_site, status, profile_code, logger_id FROM shipments "
            f"WHERE coi IN ({journeys}) ORDER BY id"
        )
        cases = await pool.fetch(
            f"SELECT coi, chain_length FROM cases WHERE coi IN ({journeys}) ORDER BY coi"
        )
        events = await pool.fetchval(f"SELECT count(*) FROM custody_events WHERE coi IN ({journeys})")
    finally:
        await pool.close()
    assert len(cases) == 3
    assert [(s["from_site"], s["to_site"], s["status"], s["profile_code"]) for s in shipments] == [
        ("USZ-APH", "CTA", "in_transit", "fresh"),
        ("USZ-APH", "CTA", "packed", "fresh"),
        ("USZ-APH", "CTA", "received", "crt"),
        ("CTA", "USZ", "in_transit", "cryo"),
    ]
    models = _fleet_models(DEMO_LOGGERS)
    for shipment in shipments:
        if shipment["logger_id"] is not None:
            assert models[shipment["logger_id"]] == shipment["profile_code"]
    assert sum(1 for s in shipments if s["logger_id"]) >= 3
    assert events == sum(c["chain_length"] for c in cases)
