"""The journey's sites and people with capacity at the manufacturing site (CTA), apheresis slots at the
collection site (USZ-APH), and cases whose order CTA has accepted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.journey import PASSWORD, World, build_world

ZURICH = ZoneInfo("Europe/Zurich")


def day_ahead(days: int) -> date:
    return (datetime.now(UTC).astimezone(ZURICH) + timedelta(days=days)).date()


async def capacity(world: World, runs_per_day: int, suites: list[str]) -> Any:
    return await world.ok(
        "mfg",
        "PUT",
        "/api/v1/sites/CTA/capacity/car-t",
        200,
        json={"runs_per_day": runs_per_day, "suites": suites},
    )


async def slots(world: World, day: date, *times: str, minutes: int = 240) -> list[int]:
    """Slots at USZ-APH on `day` at the given local times (HH:MM); their ids in that order."""
    added = await world.ok(
        "coord",
        "POST",
        "/api/v1/sites/USZ-APH/slots",
        201,
        json={"slots": [{"starts_at": f"{day.isoformat()}T{t}:00", "minutes": minutes} for t in times]},
    )
    return [s["id"] for s in sorted(added, key=lambda s: s["starts_at"])]


async def ordered_case(world: World, accept: bool = True) -> str:
    coi = await world.new_case()
    await world.ok(
        "coord",
        "POST",
        f"/api/v1/cases/{coi}/order",
        201,
        json={
            "product": "car-t",
            "collection_site": "USZ-APH",
            "manufacturing_site": "CTA",
            "mdt_reference": "MDT-2026-17",
            "mdt_date": datetime.now(UTC).date().isoformat(),
            "physician": "Dr. Hanna Keller",
        },
    )
    if accept:
        await world.ok(
            "mfg",
            "POST",
            f"/api/v1/cases/{coi}/order/decision",
            201,
            json={"decision": "accept", "password": PASSWORD},
        )
    return coi


async def planned_world(client: Any) -> World:
    world = await build_world(client)
    await capacity(world, 1, ["S1", "S2"])
    return world
