"""Issue 20, finding 11 on real PostgreSQL: an alert never says it fired before its excursion began, also
once the complete readings move the excursion's start or withdraw it; and closing an alert by hand is a
decision about the alert, not the end of the excursion (`ended_at` is when the temperature came back)."""

from __future__ import annotations

from datetime import timedelta

from alerting_support import BASE, alerts_of, ingest, insert_shipment, readings, setup_accounts

from backend.services import excursions
from backend.services.excursions import evaluate_after_ingest

LOGGER = "LGR-F11A"


async def test_an_alert_whose_excursion_moves_or_goes_never_fired_before_it_began(client, pool):
    who = await setup_accounts(client, [LOGGER])
    async with pool.acquire() as conn:
        shipment, _coi = await insert_shipment(conn, LOGGER)
    # 16 °C from the first reading (above "critical above 15 °C at once") for an hour, then in range.
    await ingest(client, who["bridge"], readings(LOGGER, [16.0] * 12 + [5.0] * 3))
    await evaluate_after_ingest(pool, set(), {LOGGER})
    [alert] = await alerts_of(pool, shipment)
    assert (alert.severity, alert.started_at) == ("critical", BASE)

    # The pick-up is corrected to 20 minutes later: the readings before it are not the leg's, so the
    # excursion starts at minute 20, after the alert had first fired.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE shipments SET departed_at = $2 WHERE id = $1", shipment, BASE + timedelta(minutes=20)
        )
    await excursions.sweep(pool)
    [moved] = await alerts_of(pool, shipment)
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT started_at, fired_at FROM alerts WHERE id = $1", alert.id)
    assert moved.id == alert.id
    assert row["started_at"] == BASE + timedelta(minutes=20)
    assert row["fired_at"] >= row["started_at"]

    # Then to after the excursion: nothing of it is on the leg, and the alert is withdrawn.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE shipments SET departed_at = $2 WHERE id = $1", shipment, BASE + timedelta(minutes=61)
        )
    await excursions.sweep(pool)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT status, withdrawn_at, started_at, fired_at, ended_at FROM alerts WHERE shipment_id = $1",
            shipment,
        )
    assert [(r["status"], r["withdrawn_at"] is not None) for r in rows] == [("closed", True)]
    assert all(r["fired_at"] >= r["started_at"] and r["ended_at"] >= r["started_at"] for r in rows)


async def test_closing_by_hand_keeps_the_excursion_going_and_the_engine_records_its_end(client, pool):
    who = await setup_accounts(client, [LOGGER])
    async with pool.acquire() as conn:
        shipment, _coi = await insert_shipment(conn, LOGGER)
    await ingest(client, who["bridge"], readings(LOGGER, [5.0] * 2 + [12.0] * 8))
    await evaluate_after_ingest(pool, set(), {LOGGER})
    [warning] = await alerts_of(pool, shipment)
    closed = await client.post(
        f"/api/v1/alerts/{warning.id}/close", headers=who["coord"], json={"reason": "box re-iced, watching"}
    )
    assert closed.status_code == 201, closed.text
    body = closed.json()
    assert (body["status"], body["ended_at"]) == ("closed", None)

    # Still 12 °C, then back in range at minute 70: the closed alert learns when its excursion ended,
    # and stays closed.
    back = BASE + timedelta(minutes=70)
    await ingest(client, who["bridge"], readings(LOGGER, [12.0] * 4, start=BASE + timedelta(minutes=50)))
    await ingest(client, who["bridge"], readings(LOGGER, [5.0] * 2, start=back))
    await evaluate_after_ingest(pool, set(), {LOGGER})
    [after] = await alerts_of(pool, shipment)
    assert (after.id, after.status, after.ended_at) == (warning.id, "closed", back)
    async with pool.acquire() as conn:
        closed_at = await conn.fetchval("SELECT closed_at FROM alerts WHERE id = $1", warning.id)
    assert closed_at > back  # closed by a person now; the excursion ended at minute 70 of the readings
