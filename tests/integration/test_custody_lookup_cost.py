"""The scan's look-up of the record (`case_recorded_states`) reads what the scan needs, not the chain: on a
case whose chain has grown long, it reads a handful of index entries and events, the same as on a short
chain. The database counts the tuples it reads for the transaction; a look-up that read and sorted every
event of the case (as its generic plan once did) fails here."""

from __future__ import annotations

import asyncpg

from backend.db.repo import cases
from backend.domain.replay import SHIPMENT_STATUS_ACTIONS, UNIT_STATUS_OF_ACTION
from tests.integration.journey import build_world, stored_bag

# Tuples the table and its indexes handed out in this transaction (an index scan counts on the index).
READ_COUNT = """SELECT sum(pg_stat_get_xact_tuples_returned(oid) + pg_stat_get_xact_tuples_fetched(oid))
                  FROM pg_class
                 WHERE oid = 'custody_events'::regclass
                    OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'custody_events'::regclass)"""

ADDED = 120


async def _tuples_read(conn: asyncpg.Connection, coi: str, bag: str, shipment: str | None) -> int:
    """Index entries and heap tuples of custody_events that one look-up reads, counted by PostgreSQL."""
    async with conn.transaction():
        before = await conn.fetchval(READ_COUNT)
        # as the scan service calls it
        recorded = await cases.lock_chain_with_record(
            conn, coi, [bag], list(UNIT_STATUS_OF_ACTION), shipment, list(SHIPMENT_STATUS_ACTIONS)
        )
        assert recorded is not None
        assert recorded.units[bag].action == "store"
        after = await conn.fetchval(READ_COUNT)
    return int(after - before)


async def test_the_record_look_up_does_not_grow_with_the_chain(client, database_url):
    world = await build_world(client)
    coi, bag = await stored_bag(world)
    conn = await asyncpg.connect(database_url)
    try:
        shipment = await conn.fetchval(
            "SELECT shipment_id FROM custody_events WHERE coi = $1 AND shipment_id IS NOT NULL LIMIT 1", coi
        )
        short = await _tuples_read(conn, coi, bag, None)
        short_with_shipment = await _tuples_read(conn, coi, bag, shipment)
        # A pharmacist re-stores the bag many times: every one an accepted status-setting step on it.
        for _ in range(ADDED):
            await world.scan_ok("pharm", "store", "USZ", bag, storage_location="LN2-1")
        length = await conn.fetchval("SELECT chain_length FROM cases WHERE coi = $1", coi)
        assert length > ADDED
        # With statistics that know a case holds many events, a plan free to choose reads them all by
        # a bitmap scan and sorts them; the look-up must not be free to.
        await conn.execute("ANALYZE custody_events")
    finally:
        await conn.close()
    # A new connection plans the function afresh with those statistics.
    conn = await asyncpg.connect(database_url)
    try:
        long = await _tuples_read(conn, coi, bag, None)
        long_with_shipment = await _tuples_read(conn, coi, bag, shipment)
    finally:
        await conn.close()
    # A plan that reads the case's events reads each of the 120 added ones at least twice (index entry and
    # event); the look-up reads a handful more at most, whatever the chain's length.
    assert short > 0
    assert long < short + ADDED // 4, (short, long)
    # The shipment's last step is found on its own index: the walk does not pass the 120 later stores.
    assert long_with_shipment < short_with_shipment + ADDED // 4, (short_with_shipment, long_with_shipment)
