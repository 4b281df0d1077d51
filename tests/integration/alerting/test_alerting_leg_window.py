"""A leg's readings are defined by time, from packing to receipt, whatever the order in which readings
and custody steps reach the server (issue 20, finding 5). The custody steps are real scans; the readings
come through the real ingest endpoint, as a logger's backlog would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alerting_support import alerts_of, ingest, readings

from backend.services import excursions
from tests.integration.helpers import make_user
from tests.integration.journey import World, accept_receipt, build_world


async def _world_with_loggers(client: Any, *loggers: str) -> World:
    world = await build_world(client)
    world.headers["bridge"] = await make_user(
        client, world.headers["admin"], "bridge", ["bridge"], ["USZ-APH"]
    )
    for logger_id in loggers:
        await world.ok(
            "admin",
            "POST",
            "/api/v1/loggers",
            201,
            json={"id": logger_id, "owner_site": "USZ-APH", "issue_broker_password": False},
        )
    return world


async def _leg(world: World, logger_id: str) -> tuple[str, str]:
    coi = await world.new_case()
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph], logger_id=logger_id)
    return ship, aph


def _warm_after_packing(logger_id: str, packed: datetime) -> list[Any]:
    # 70 s at 25 °C a minute after packing, then back in range: above the fresh profile's critical limit.
    return readings(
        logger_id, [5.0, 25.0, 25.0, 5.0, 5.0], start=packed + timedelta(seconds=20), every_minutes=35 / 60
    )


def _temperature(alerts: list[Any]) -> list[tuple[str, datetime, datetime | None]]:
    return [(a.severity, a.started_at, a.ended_at) for a in alerts if a.kind == "temperature_high"]


@pytest.mark.parametrize("readings_first", [False, True], ids=["scans-first", "readings-first"])
async def test_readings_between_packing_and_pickup_are_on_the_leg_in_either_order(
    client, pool, readings_first
):
    world = await _world_with_loggers(client, "LGR-0501")
    ship, aph = await _leg(world, "LGR-0501")
    # Packed offline ten minutes ago: the scanning device's time is when the item went into the box.
    packed = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    backlog = _warm_after_packing("LGR-0501", packed)
    if readings_first:
        await ingest(world.client, world.headers["bridge"], backlog)
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph, device_time=packed.isoformat())
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    if not readings_first:
        await ingest(world.client, world.headers["bridge"], backlog)
    await excursions.sweep(pool)
    found = await alerts_of(pool, ship)
    assert _temperature(found) == [("critical", backlog[1].ts, backlog[3].ts)]


async def test_a_reading_from_before_packing_is_not_on_the_leg(client, pool):
    world = await _world_with_loggers(client, "LGR-0502")
    ship, aph = await _leg(world, "LGR-0502")
    packed = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    # Warm in the fridge before packing (the logger already running), in range after.
    before = readings("LGR-0502", [25.0, 25.0, 25.0], start=packed - timedelta(minutes=3), every_minutes=1)
    after = readings("LGR-0502", [5.0, 5.0, 5.0], start=packed, every_minutes=1)
    await ingest(world.client, world.headers["bridge"], before + after)
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph, device_time=packed.isoformat())
    await excursions.sweep(pool)
    assert _temperature(await alerts_of(pool, ship)) == []


async def test_a_late_backlog_after_receipt_re_evaluates_the_received_leg(client, pool):
    world = await _world_with_loggers(client, "LGR-0503")
    ship, aph = await _leg(world, "LGR-0503")
    packed = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph, device_time=packed.isoformat())
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    await ingest(world.client, world.headers["bridge"], readings("LGR-0503", [5.0] * 3, start=packed))
    await world.scan_ok("mfg", "receive", "CTA", ship)
    await world.scan_ok("mfg", "receive", "CTA", ship, aph)
    await accept_receipt(world, "mfg", ship)
    await excursions.sweep(pool)
    assert _temperature(await alerts_of(pool, ship)) == []
    # The logger was offline in transit; its backlog lands after the receipt, shuffled and repeated.
    backlog = readings(
        "LGR-0503", [5.0, 25.0, 25.0, 5.0], start=packed + timedelta(minutes=5), every_minutes=1
    )
    await ingest(world.client, world.headers["bridge"], backlog[::-1] + backlog[:2])
    found = await alerts_of(pool, ship)
    high = [a for a in found if a.kind == "temperature_high"]
    assert [(a.severity, a.started_at) for a in high] == [("critical", backlog[1].ts)]
    # A reading dated after the receipt is not the leg's, whenever it arrives.
    async with pool.acquire() as conn:
        received = await conn.fetchval("SELECT received_at FROM shipments WHERE id = $1", ship)
    await ingest(
        world.client,
        world.headers["bridge"],
        readings("LGR-0503", [30.0], start=received + timedelta(seconds=1)),
    )
    await excursions.sweep(pool)
    after = await alerts_of(pool, ship)
    assert [(a.id, a.ended_at) for a in after if a.kind == "temperature_high"] == [
        (a.id, a.ended_at) for a in high
    ]
    assert high[0].ended_at == backlog[3].ts
