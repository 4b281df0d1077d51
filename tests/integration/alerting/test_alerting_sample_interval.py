"""A logger's sampling interval is set through the API on registration and later (audited); gap detection
works from it, and a change re-evaluates the leg under way."""

from __future__ import annotations

from datetime import timedelta

from alerting_support import BASE, alerts_of, ingest, insert_shipment, readings, setup_accounts

from backend.services import excursions
from backend.services.excursions import evaluate_after_ingest

LOGGER = "LGR-SI01"


def _gaps(alerts):
    return [(a.started_at, a.ended_at, a.status) for a in alerts if a.kind == "data_gap"]


async def test_the_declared_interval_decides_what_is_a_gap_and_a_change_re_evaluates_the_leg(client, pool):
    who = await setup_accounts(client, [])
    created = await client.post(
        "/api/v1/loggers",
        headers=who["admin"],
        json={"id": LOGGER, "owner_site": "CRX", "issue_broker_password": False, "sample_interval_s": 60},
    )
    assert created.status_code == 201, created.text
    assert created.json()["logger"]["sample_interval_s"] == 60
    refused = await client.patch(
        f"/api/v1/loggers/{LOGGER}", headers=who["admin"], json={"reason": "typo", "sample_interval_s": 0}
    )
    assert refused.status_code == 400, refused.text

    async with pool.acquire() as conn:
        shipment, _coi = await insert_shipment(conn, LOGGER)
    # One reading a minute, with a 5-minute hole at minute 10: more than three declared intervals. A
    # burst of readings one second apart (a logger flushing its memory) does not shrink the interval the
    # hole is judged by: the declared one holds.
    burst = readings(LOGGER, [5.0] * 5, start=BASE + timedelta(minutes=20), every_minutes=1 / 60)
    series = readings(LOGGER, [5.0] * 11, every_minutes=1) + readings(
        LOGGER, [5.0] * 5, start=BASE + timedelta(minutes=15), every_minutes=1
    )
    await ingest(client, who["bridge"], series + burst)
    await evaluate_after_ingest(pool, set(), {LOGGER})
    assert _gaps(await alerts_of(pool, shipment)) == [
        (BASE + timedelta(minutes=10), BASE + timedelta(minutes=15), "resolved")
    ]

    # The logger really samples every 10 minutes: the hole is no gap, and its notice is withdrawn.
    changed = await client.patch(
        f"/api/v1/loggers/{LOGGER}",
        headers=who["admin"],
        json={"reason": "configured for 10-minute sampling", "sample_interval_s": 600},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["sample_interval_s"] == 600
    await excursions.sweep(pool)
    assert _gaps(await alerts_of(pool, shipment)) == [
        (BASE + timedelta(minutes=10), BASE + timedelta(minutes=15), "closed")
    ]
    async with pool.acquire() as conn:
        audit = await conn.fetchrow(
            "SELECT old_value, new_value, reason FROM audit_log WHERE entity = 'logger' AND action = 'update'"
        )
    assert audit is not None
    assert "600" in str(audit["new_value"])
    assert "60" in str(audit["old_value"])
