"""Each reading is linked to the shipment its logger travelled with at that moment."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import msgspec
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


async def test_readings_link_to_the_shipment_of_their_time_and_the_latest_departure_wins(
    client, database_url
):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0010")
    conn = await asyncpg.connect(database_url)
    try:
        # Departed at minute 10 (planned for 5), received at minute 30.
        first = await insert_shipment(
            conn,
            "LGR-0010",
            BASE + timedelta(minutes=5),
            departed_at=BASE + timedelta(minutes=10),
            received_at=BASE + timedelta(minutes=30),
        )
        # Not departed yet: its planned departure (minute 40) counts, and it never ends.
        second = await insert_shipment(conn, "LGR-0010", BASE + timedelta(minutes=40))
        # Overlaps the second from minute 50 on: the later departure wins there.
        third = await insert_shipment(
            conn, "LGR-0010", BASE + timedelta(minutes=50), departed_at=BASE + timedelta(minutes=50)
        )
        minutes = [0, 9, 10, 29, 30, 39, 40, 49, 50, 70]
        result = await post_batch(
            client, who["bridge"], batch([reading("LGR-0010", m, 4.0) for m in reversed(minutes)])
        )
        assert result["stored"] == len(minutes)
        links = {ts - BASE: shipment for ts, _, shipment in await stored(conn, "LGR-0010")}
        outbox = await conn.fetch(
            "SELECT sites, coi, payload FROM outbox WHERE kind = 'readings' ORDER BY id"
        )
        coi_of_third = await conn.fetchval("SELECT coi FROM shipments WHERE id = $1", third)
    finally:
        await conn.close()
    assert links == {
        timedelta(minutes=0): None,
        timedelta(minutes=9): None,
        timedelta(minutes=10): first,
        timedelta(minutes=29): first,
        timedelta(minutes=30): None,
        timedelta(minutes=39): None,
        timedelta(minutes=40): second,
        timedelta(minutes=49): second,
        timedelta(minutes=50): third,
        timedelta(minutes=70): third,
    }
    summaries = {msgspec.json.decode(r["payload"])["shipment_id"]: r for r in outbox}
    assert set(summaries) == {None, first, second, third}
    assert list(summaries[third]["sites"]) == ["CRX", "USZ"]
    assert summaries[third]["coi"] == coi_of_third
    assert msgspec.json.decode(summaries[third]["payload"])["loggers"][0]["count"] == 2
    assert list(summaries[None]["sites"]) == ["CRX"]
