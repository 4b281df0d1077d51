"""KPIs on a generated set of cases whose answers are known: custody events written with chosen times,
legs with chosen plans and arrivals, excursions and refusals on chosen lanes; then the figures of
GET /api/v1/kpis, its CSV, and what another organisation sees of them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from backend.db.repo import users
from backend.services import auth
from backend.services import chain as chains
from backend.services.planning import kpis
from backend.services.planning.kpis import CaseFacts, LegFacts
from tests.integration.helpers import make_site, make_user
from tests.integration.journey import build_world

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
# (collection, days from manufacturing start to release, days from collection to infusion)
CASES = (
    (datetime(2026, 1, 2, 8, tzinfo=UTC), 14, 20),
    (datetime(2026, 1, 5, 8, tzinfo=UTC), 15, 24),
    (datetime(2026, 1, 20, 8, tzinfo=UTC), 18, 30),
)


async def _append(pool: Any, who: Any, coi: str, action: str, site: str, at: datetime, **extra: Any) -> None:
    async with pool.acquire() as conn, conn.transaction():
        locked = await chains.lock(conn, coi)
        await chains.append(
            conn,
            locked,
            action=action,
            actor=who,
            site=site,
            detail=f"generated {action}",
            server_time=at,
            **extra,
        )


async def _leg(
    conn: Any, number: int, coi: str, route: tuple[str, str], planned: datetime, arrived: datetime
) -> str:
    shipment_id = f"SHP-2026-{number:06d}"
    await conn.execute(
        """INSERT INTO shipments (id, coi, from_site, to_site, container_id, profile_code, profile_version,
               profile, planned_departure, planned_arrival, arrived_at, status)
           VALUES ($1, $2, $3, $4, 'BOX', 'fresh', 1, '{}'::jsonb, $5, $6, $7, 'received')""",
        shipment_id,
        coi,
        route[0],
        route[1],
        planned - 6 * HOUR,
        planned,
        arrived,
    )
    return shipment_id


async def generated(client: Any, pool: Any, database_url: str) -> Any:
    world = await build_world(client)
    async with pool.acquire() as conn:
        row = await users.by_username(conn, "coord")
    assert row is not None
    who = auth.principal_of(row)
    conn = await asyncpg.connect(database_url)
    try:
        for index, (collected, turnaround, v2v) in enumerate(CASES):
            coi = await world.new_case()
            aph = await world.unit("nurse", coi, "APH", "USZ-APH")
            started = collected + 10 * HOUR
            # Inbound legs arrive (their receipt at CTA) ten hours after collection; the second was planned
            # for nine and is late. Outbound legs: all on time. The legs' own arrival columns say otherwise:
            # the record's scans count.
            inbound = await _leg(
                conn,
                100 + index,
                coi,
                ("USZ-APH", "CTA"),
                collected + (9 if index == 1 else 10) * HOUR,
                collected + 2 * DAY,
            )
            released = started + turnaround * DAY
            outbound = await _leg(
                conn, 200 + index, coi, ("CTA", "USZ"), released + 30 * HOUR, released + 3 * DAY
            )
            await _append(pool, who, coi, "label", "USZ-APH", collected, unit_ids=[aph])
            await _append(pool, who, coi, "pickup", "USZ-APH", collected + 2 * HOUR, shipment_id=inbound)
            await _append(
                pool, who, coi, "receipt", "CTA", started, shipment_id=inbound, data={"decision": "accept"}
            )
            await _append(pool, who, coi, "release", "CTA", released)
            await _append(pool, who, coi, "pickup", "CTA", released + 24 * HOUR, shipment_id=outbound)
            await _append(
                pool,
                who,
                coi,
                "receipt",
                "USZ",
                released + 30 * HOUR,
                shipment_id=outbound,
                data={"decision": "accept"},
            )
            await _append(pool, who, coi, "infuse", "USZ", collected + v2v * DAY)
            if index == 0:
                # A refused step on the inbound lane at CTA, a temperature excursion on it, and a device
                # alert that is no excursion.
                await _append(
                    pool,
                    who,
                    coi,
                    "receive",
                    "CTA",
                    started,
                    shipment_id=inbound,
                    outcome="refused",
                    refusal="wrong_site",
                )
                for kind in ("temperature_high", "battery_low"):
                    await conn.execute(
                        """INSERT INTO alerts (kind, severity, title, detail, coi, shipment_id, sites,
                               condition_key, started_at)
                           VALUES ($1, 'warning', 't', 'd', $2, $3, '{USZ-APH,CTA}', $4, now())""",
                        kind,
                        coi,
                        inbound,
                        f"test:{kind}",
                    )
    finally:
        await conn.close()
    return world


async def test_kpis_of_generated_cases(client, pool, database_url):
    world = await generated(client, pool, database_url)
    figures = await world.ok("coord", "GET", "/api/v1/kpis")
    assert figures["vein_to_vein"] == {"cases": 3, "median_days": 24.0, "min_days": 20.0, "max_days": 30.0}
    assert figures["vein_to_vein_by_month"] == [
        {"month": "2026-01", "cases": 2, "median_days": 22.0, "min_days": 20.0, "max_days": 24.0},
        {"month": "2026-02", "cases": 1, "median_days": 30.0, "min_days": 30.0, "max_days": 30.0},
    ]
    assert [(g["site"], g["cases"]) for g in figures["vein_to_vein_by_site"]] == [("USZ", 3)]
    assert figures["turnaround"] == {"cases": 3, "median_days": 15.0, "min_days": 14.0, "max_days": 18.0}
    assert [(g["site"], g["median_days"]) for g in figures["turnaround_by_site"]] == [("CTA", 15.0)]
    lanes = {lane["lane"]: lane for lane in figures["lanes"]}
    assert lanes["USZ-APH→CTA"] | {"on_time_rate": None} == {
        "lane": "USZ-APH→CTA",
        "from_site": "USZ-APH",
        "to_site": "CTA",
        "shipments": 3,
        "arrived": 3,
        "on_time": 2,
        "on_time_rate": None,
        "excursions": 1,
        "refusals": 1,
    }
    assert lanes["USZ-APH→CTA"]["on_time_rate"] == 0.667
    assert (lanes["CTA→USZ"]["on_time"], lanes["CTA→USZ"]["excursions"]) == (3, 0)
    sites = {s["site"]: s for s in figures["sites"]}
    assert (sites["USZ-APH"]["excursions"], sites["CTA"]["refusals"]) == (1, 1)
    # No plans among these cases: no leg is compared against one.
    assert all(leg["cases"] == 0 for leg in figures["legs"])

    response = await world.call("coord", "GET", "/api/v1/kpis.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    overall = {
        r["metric"]: r["value"]
        for r in rows
        if r["section"] == "vein_to_vein" and not r["month"] and not r["site"]
    }
    assert overall == {"cases": "3", "median_days": "24.0", "min_days": "20.0", "max_days": "30.0"}
    on_time = [r for r in rows if r["lane"] == "USZ-APH→CTA" and r["metric"] == "on_time"]
    assert [r["value"] for r in on_time] == ["2"]

    # One site's figures: CTA made all three; USZ-APH is no treatment site and made none.
    assert (await world.ok("coord", "GET", "/api/v1/kpis", params={"site": "CTA"}))["turnaround"][
        "cases"
    ] == 3
    assert (await world.ok("coord", "GET", "/api/v1/kpis", params={"site": "USZ-APH"}))["vein_to_vein"][
        "cases"
    ] == 0

    root = world.headers["admin"]
    await make_site(client, root, "KSB")
    outsider = await make_user(client, root, "ksb-coord", ["coordinator"], ["KSB"])
    theirs = (await client.get("/api/v1/kpis", headers=outsider)).json()
    assert theirs["vein_to_vein"]["cases"] == 0
    assert theirs["lanes"] == []


def test_legs_against_plan():
    t0 = datetime(2026, 4, 1, 8, tzinfo=UTC)
    plan = {
        "collection": t0,
        "shipment_to_manufacturing": t0 + 2 * HOUR,
        "manufacturing_start": t0 + 24 * HOUR,
    }
    facts = [
        CaseFacts(
            coi=f"C{i}",
            treatment_site="USZ",
            manufacturing_site="CTA",
            treatment_zone="Europe/Zurich",
            manufacturing_zone="Europe/Zurich",
            planned=plan,
            actual={"collection": t0, "shipment_to_manufacturing": t0 + hours * HOUR},
        )
        for i, hours in enumerate((1, 2, 5))
    ]
    legs = {leg.leg: leg for leg in kpis.compute(facts, []).legs}
    first = legs["collection>shipment_to_manufacturing"]
    assert (first.cases, first.planned_median_hours, first.actual_median_hours, first.late) == (
        3,
        2.0,
        2.0,
        1,
    )
    assert legs["shipment_to_manufacturing>manufacturing_start"].cases == 0
    lanes = kpis.compute(
        [],
        [
            LegFacts(
                shipment_id="S1",
                from_site="A",
                to_site="B",
                planned_arrival=t0,
                arrived_at=None,
                excursions=0,
                refusals=0,
            ),
        ],
    ).lanes
    # A leg still travelling counts among shipments, not among arrivals.
    assert (lanes[0].shipments, lanes[0].arrived, lanes[0].on_time_rate) == (1, 0, None)
