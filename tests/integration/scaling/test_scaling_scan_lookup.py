"""A scan's bag look-up (by unit id or by DIN) and the update of a bag's status read indexes, not whole
tables, and are planned once per connection: their cost must not follow the number of bags, cases and
legs ever registered. Found by bench/growth.py: every custody scan once read every stored bag (migration
0045), and later planned both statements afresh on every scan, because their generic plans (which assume
ten bags per scan) cost more than the custom plan of one bag once `units` is large (migration 0060).
Rows read and plans chosen, as PostgreSQL counts them; never a timing."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from backend.db.repo import cases

BAGS = 3_000
BAG_OF_DIN = {"W000000000008": "CHU000000000008-APH-01"}

# Index entries and heap tuples the table and its indexes handed out in this transaction.
READ_COUNT = """SELECT sum(pg_stat_get_xact_tuples_returned(oid) + pg_stat_get_xact_tuples_fetched(oid))
                  FROM pg_class
                 WHERE oid = $1::regclass
                    OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1::regclass)"""
TABLES = ("units", "cases", "shipments")


@pytest.fixture
async def registry(database_url: str) -> Any:
    """Completed cases treated at HIST-T, each with a bag now at HIST-B (half with a DIN) and a finished
    leg HIST-A -> HIST-B: a caller bound to HIST-A sees a case through its leg, one bound to HIST-B
    through where its bag is."""
    conn = await asyncpg.connect(database_url)
    try:
        # Generated history, not news: no trigger announces or marks these rows.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(
            """INSERT INTO sites (code, name, kind, time_zone) VALUES
                   ('HIST-A', 'History sender', 'manufacturing', 'UTC'),
                   ('HIST-B', 'History receiver', 'hospital', 'UTC'),
                   ('HIST-T', 'History treatment', 'hospital', 'UTC');
               INSERT INTO users (username, full_name, password_hash) VALUES ('history', 'History', 'x');
               INSERT INTO temperature_profiles (code, version, name, definition, status)
               VALUES ('hist', 1, 'History', '{}', 'approved');
               INSERT INTO loggers (id, model, owner_site) VALUES ('LGR-H1', 'hist', 'HIST-A');"""
        )
        await conn.execute(
            """INSERT INTO cases (coi, treatment_site, therapy, created_by, status)
               SELECT 'CHU' || lpad(g::text, 12, '0'), 'HIST-T', 'history',
                      (SELECT id FROM users WHERE username = 'history'), 'completed'
               FROM generate_series(1, $1::int) g""",
            BAGS,
        )
        # Half the bags carry a DIN, as bags registered from an ISBT 128 label do.
        await conn.execute(
            """INSERT INTO units (id, coi, kind, product, status, site, din)
               SELECT 'CHU' || lpad(g::text, 12, '0') || '-APH-01', 'CHU' || lpad(g::text, 12, '0'), 'APH',
                      'Apheresis', 'infused', 'HIST-B',
                      CASE WHEN g % 2 = 0 THEN 'W0000' || lpad(g::text, 8, '0') END
               FROM generate_series(1, $1::int) g""",
            BAGS,
        )
        await conn.execute(
            """INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code,
                                      profile_version, profile, planned_departure, planned_arrival, status,
                                      departed_at, arrived_at, received_at)
               SELECT 'SHP-9000-' || lpad(g::text, 6, '0'), 'CHU' || lpad(g::text, 12, '0'), 'HIST-A',
                      'HIST-B', 'C-' || g, 'LGR-H1', 'hist', 1, '{}', d, d + interval '2 days', 'received',
                      d, d + interval '2 days', d + interval '2 days'
               FROM generate_series(1, $1::int) g,
                    LATERAL (SELECT now() - (g % 900 + 3) * interval '1 day' AS d) x""",
            BAGS,
        )
        await conn.execute("RESET session_replication_role")
        await conn.execute("ANALYZE")
        yield conn
    finally:
        await conn.close()


async def _look_up(
    conn: asyncpg.Connection[Any], ids: list[str], dins: list[str], sites: list[str] | None
) -> tuple[set[str], dict[str, int]]:
    """The bags found, and the rows and index entries each table gave the look-up (one transaction)."""
    async with conn.transaction():
        before = {t: int(await conn.fetchval(READ_COUNT, t) or 0) for t in TABLES}
        found = await cases.lock_visible_units(conn, ids, dins, sites)
        after = {t: int(await conn.fetchval(READ_COUNT, t) or 0) for t in TABLES}
    return {u.id for u in found}, {t: after[t] - before[t] for t in TABLES}


LOOK_UPS = [
    (["CHU000000000007-APH-01"], []),
    ([], ["W000000000008"]),
    (["CHU000000000007-APH-01"], ["W000000000008"]),
]


async def test_scan_finds_its_bags_through_indexes(registry: Any) -> None:
    for sites in (None, ["HIST-T"], ["HIST-A"], ["HIST-B"], ["ELSEWHERE"]):
        for ids, dins in LOOK_UPS:
            found, reads = await _look_up(registry, ids, dins, sites)
            # A pass over any of these tables reads its thousands of rows; the look-up reads a few index
            # entries and rows per bag named, through whichever visibility rule lets the caller see it.
            assert all(n < 50 for n in reads.values()), (sites, ids, dins, reads)
            # And it still answers what it answered: the bags named, when the caller may see their case.
            named = set(ids) | {BAG_OF_DIN[d] for d in dins}
            assert found == (set() if sites == ["ELSEWHERE"] else named), (sites, ids)


async def test_scan_statements_are_planned_once_per_connection(registry: Any) -> None:
    """After its first executions a statement the scan sends runs on its cached generic plan; a statement
    whose generic plan looks dearer than its custom plans is planned again at every execution, a cost
    that grows with the tables' statistics."""
    bag = "CHU000000000007-APH-01"
    for n in range(10):
        async with registry.transaction():
            await cases.lock_visible_units(registry, [bag], [], ["HIST-A"])
            await cases.set_unit_status(registry, [bag], "infused", f"LN2-{n}")
    plans = {
        row["statement"]: (row["generic_plans"], row["custom_plans"])
        for row in await registry.fetch(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
        )
    }
    sent = {s: p for s, p in plans.items() if "lock_visible_units" in s or "set_unit_status" in s}
    assert len(sent) == 2, plans
    # PostgreSQL plans a prepared statement custom five times before it weighs the generic plan.
    assert all(generic >= 5 and custom <= 5 for generic, custom in sent.values()), sent
