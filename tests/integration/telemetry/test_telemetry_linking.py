"""Each reading is filed under the leg of its logger whose window holds its time (migration 0023): from
the leg's start until its receipt, a received leg included (a late backlog); never under a shipment
that merely claims the time by its dates."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import msgspec
import pytest
from telemetry_support import (
    BASE,
    batch,
    insert_shipment,
    post_batch,
    reading,
    register,
    setup_accounts,
    stored,
)


async def test_readings_go_to_the_active_shipment_from_its_start_and_after_the_previous_receipt(
    client, database_url
):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0010")
    conn = await asyncpg.connect(database_url)
    try:
        # Departed at minute 10 (planned for 5), received at minute 30: its window is [10, 30), and a
        # reading of that time that arrives after the receipt still belongs to it.
        first = await insert_shipment(
            conn,
            "LGR-0010",
            BASE + timedelta(minutes=5),
            departed_at=BASE + timedelta(minutes=10),
            received_at=BASE + timedelta(minutes=30),
        )
        # The assignment now; not departed yet, so its planned departure (minute 40) is its start.
        second = await insert_shipment(conn, "LGR-0010", BASE + timedelta(minutes=40))
        minutes = [0, 9, 10, 29, 30, 39, 40, 49, 50, 70]
        result = await post_batch(
            client, who["bridge"], batch([reading("LGR-0010", m, 4.0) for m in reversed(minutes)])
        )
        assert result["stored"] == len(minutes)
        links = {ts - BASE: shipment for ts, _, shipment in await stored(conn, "LGR-0010")}
        outbox = await conn.fetch(
            "SELECT sites, coi, payload FROM outbox WHERE kind = 'readings' ORDER BY id"
        )
        coi_of_second = await conn.fetchval("SELECT coi FROM shipments WHERE id = $1", second)
    finally:
        await conn.close()
    expected = {m: (second if m >= 40 else first if 10 <= m < 30 else None) for m in minutes}
    assert links == {timedelta(minutes=m): shipment for m, shipment in expected.items()}
    summaries = {msgspec.json.decode(r["payload"])["shipment_id"]: r for r in outbox}
    assert set(summaries) == {None, first, second}
    assert list(summaries[second]["sites"]) == ["CRX", "USZ"]
    assert summaries[second]["coi"] == coi_of_second
    assert msgspec.json.decode(summaries[second]["payload"])["loggers"][0]["count"] == 4
    assert list(summaries[None]["sites"]) == ["CRX"]
    assert list(summaries[first]["sites"]) == ["CRX", "USZ"]


async def test_a_backdated_departure_does_not_reach_back_past_the_previous_receipt(client, database_url):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0011")
    conn = await asyncpg.connect(database_url)
    try:
        first = await insert_shipment(
            conn,
            "LGR-0011",
            BASE,
            departed_at=BASE,
            received_at=BASE + timedelta(minutes=30),
        )
        # Planned after the receipt with a departure dated back into the first shipment's journey.
        backdated = await insert_shipment(conn, "LGR-0011", BASE + timedelta(minutes=20))
        minutes = [10, 20, 29, 30, 45]
        await post_batch(client, who["bridge"], batch([reading("LGR-0011", m, 5.0) for m in minutes]))
        links = {ts - BASE: shipment for ts, _, shipment in await stored(conn, "LGR-0011")}
    finally:
        await conn.close()
    assert links == {timedelta(minutes=m): (backdated if m >= 30 else first) for m in minutes}


async def test_the_database_holds_one_active_shipment_per_logger(client, database_url):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0012")
    await register(client, who["admin"], "LGR-0013")
    conn = await asyncpg.connect(database_url)
    try:
        await insert_shipment(conn, "LGR-0012", BASE)
        with pytest.raises(asyncpg.UniqueViolationError, match="shipments_one_active_per_logger"):
            await insert_shipment(conn, "LGR-0012", BASE + timedelta(hours=1))
        # Received and quarantined shipments no longer hold their logger.
        await insert_shipment(conn, "LGR-0013", BASE, received_at=BASE + timedelta(hours=1))
        await insert_shipment(
            conn, "LGR-0013", BASE, received_at=BASE + timedelta(hours=1), status="quarantined"
        )
        await insert_shipment(conn, "LGR-0013", BASE + timedelta(hours=2))
    finally:
        await conn.close()
