"""The periodic checks: a silent logger alerts and the alert ends when data returns, when the leg is
received, or (logger lost) after the maximum; a late shipment alerts until it arrives; the end of a leg
ends its excursions; readings nobody evaluated are swept up."""

from __future__ import annotations

from datetime import timedelta

from alerting_support import alerts_of, ingest, insert_shipment, minutes_ago, readings, setup_accounts

from backend.services import chain as chains
from backend.services.excursions import evaluate_after_ingest
from backend.services.monitoring import run_periodic_checks

LOGGER = "LGR-WATCH1"


async def leg(pool, logger=LOGGER, **times):
    values = {"departure": minutes_ago(120), "departed_at": minutes_ago(120), "arrival": minutes_ago(-600)}
    async with pool.acquire() as conn:
        shipment, _ = await insert_shipment(conn, logger, **{**values, **times})
    return shipment


async def test_a_silent_logger_alerts_and_the_alert_ends_when_data_returns(client, pool, settings):
    who = await setup_accounts(client, [LOGGER])
    shipment = await leg(pool)
    start = minutes_ago(30)
    await ingest(client, who["bridge"], readings(LOGGER, [5.0, 5.1], start=start))
    await evaluate_after_ingest(pool, set(), {LOGGER})
    await run_periodic_checks(pool, settings)
    [silent] = await alerts_of(pool, shipment)
    # Silent since the last reading (the second, 5 minutes after the first); computed once, because a
    # busy machine may cross a second boundary between two calls of minutes_ago().
    last_reading = start + timedelta(minutes=5)
    assert (silent.kind, silent.status, silent.started_at) == ("logger_silent", "open", last_reading)
    await run_periodic_checks(pool, settings)  # one condition, one alert
    assert len(await alerts_of(pool, shipment)) == 1

    await ingest(client, who["bridge"], readings(LOGGER, [5.2], start=minutes_ago(1)))
    await evaluate_after_ingest(pool, set(), {LOGGER})
    ended, gap = await alerts_of(pool, shipment)
    assert (ended.kind, ended.status, ended.ended_at is not None) == ("logger_silent", "resolved", True)
    # The silence is a data gap in the leg's record too (issue 20, finding 3).
    assert (gap.kind, gap.started_at) == ("data_gap", last_reading)


async def test_a_lost_logger_cannot_leave_an_alert_that_never_ends(client, pool, settings):
    await setup_accounts(client, [LOGGER, "LGR-WATCH2"])
    received_later = await leg(pool)
    lost = await leg(pool, "LGR-WATCH2")
    await run_periodic_checks(pool, settings)
    assert [a.kind for a in await alerts_of(pool, received_later)] == ["logger_silent"]
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE shipments SET received_at = now(), status = 'received' WHERE id = $1", received_later
        )
    much_later = chains.now() + timedelta(hours=settings.logger_silent_max_hours + 1)
    await run_periodic_checks(pool, settings, now=much_later)
    [received] = await alerts_of(pool, received_later)
    assert received.status == "resolved"
    # Three days on, the lost logger's shipment is also late; its silence is what must have ended.
    [closed] = [a for a in await alerts_of(pool, lost) if a.kind == "logger_silent"]
    assert closed.status == "closed"
    assert "lost" in (closed.close_reason or "")


async def test_finding_4_a_lost_loggers_alert_closes_once_and_reopens_only_after_it_reported(
    client, pool, settings
):
    await setup_accounts(client, ["LGR-LOST01"])
    shipment = await leg(pool, "LGR-LOST01")
    await run_periodic_checks(pool, settings)
    lost_at = chains.now() + timedelta(hours=settings.logger_silent_max_hours + 1)
    for cycle in range(5):  # every housekeeping cycle after the logger is taken as lost
        await run_periodic_checks(pool, settings, now=lost_at + timedelta(seconds=30 * cycle))
    # (Three days on the shipment is late too: that is another alert.)
    [closed] = [a for a in await alerts_of(pool, shipment) if a.kind == "logger_silent"]
    assert closed.status == "closed"
    async with pool.acquire() as conn:
        events = await conn.fetch(
            """SELECT payload FROM outbox WHERE kind = 'alert' AND payload->>'shipment_id' = $1
                 AND payload->>'alert_kind' = 'logger_silent'""",
            shipment,
        )
        before = await conn.fetchval("SELECT max(id) FROM alerts")
    assert [e["payload"]["event"] for e in events] == ["opened", "closed"]
    await run_periodic_checks(pool, settings)
    async with pool.acquire() as conn:
        # No insert was tried and refused: alert ids do not jump (finding 11).
        assert await conn.fetchval("SELECT max(id) FROM alerts") == before
        assert await conn.fetchval("SELECT last_value FROM alerts_id_seq") == before

    # The logger reports again, then falls silent again: a new silence, a new alert.
    reported = minutes_ago(1)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO readings (logger_id, ts, temp_c, shipment_id) VALUES ('LGR-LOST01', $1, 5.0, $2)",
            reported,
            shipment,
        )
    await run_periodic_checks(pool, settings)
    assert [a.kind for a in await alerts_of(pool, shipment)].count("logger_silent") == 1
    await run_periodic_checks(
        pool, settings, now=reported + timedelta(minutes=settings.logger_silent_minutes + 1)
    )
    silences = [a for a in await alerts_of(pool, shipment) if a.kind == "logger_silent"]
    assert [(a.status, a.started_at) for a in silences] == [
        ("closed", closed.started_at),
        ("open", reported),
    ]


async def test_a_late_shipment_alerts_until_it_arrives(client, pool, settings):
    await setup_accounts(client, [], people=())
    shipment = await leg(pool, None, arrival=minutes_ago(settings.shipment_late_minutes + 5))
    on_time = await leg(pool, None, arrival=minutes_ago(settings.shipment_late_minutes - 5))
    await run_periodic_checks(pool, settings)
    [late] = await alerts_of(pool, shipment)
    assert (late.kind, late.status) == ("shipment_late", "open")
    assert await alerts_of(pool, on_time) == []
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE shipments SET arrived_at = now(), status = 'arrived' WHERE id = $1", shipment
        )
    await run_periodic_checks(pool, settings)
    [arrived] = await alerts_of(pool, shipment)
    assert arrived.status == "resolved"


async def test_receipt_ends_an_excursion_in_progress_and_the_sweep_evaluates_what_was_left(
    client, pool, settings
):
    await setup_accounts(client, [LOGGER])
    shipment = await leg(pool, profile="cryo")
    # Stored, but no evaluation runs (as if the backend died right after the commit): written directly,
    # so only the trigger marks them for the sweep.
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO readings (logger_id, ts, temp_c, shipment_id) VALUES ($1, $2, $3, $4)",
            [
                (r.logger_id, r.ts, r.temp_c, shipment)
                for r in readings(LOGGER, [-190.0] * 3 + [-140.0] * 8, start=minutes_ago(12), every_minutes=1)
            ],
        )
    assert await alerts_of(pool, shipment) == []
    await run_periodic_checks(pool, settings)
    [excursion] = [a for a in await alerts_of(pool, shipment) if a.kind == "temperature_high"]
    assert (excursion.severity, excursion.status) == ("critical", "open")

    async with pool.acquire() as conn:
        received_at = await conn.fetchval(
            """UPDATE shipments SET received_at = now(), status = 'received' WHERE id = $1
               RETURNING received_at""",
            shipment,
        )
    await run_periodic_checks(pool, settings)
    [ended] = [a for a in await alerts_of(pool, shipment) if a.kind == "temperature_high"]
    # Ended with the leg, but critical and never acknowledged: latched (issue 20, finding 2).
    assert (ended.status, ended.ended_at) == ("cleared_unacknowledged", received_at)
