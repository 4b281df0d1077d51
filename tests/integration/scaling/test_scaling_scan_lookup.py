"""A scan's bag look-up (by unit id or by DIN) reads indexes, not the whole `units` table: its cost
must not follow the number of bags ever registered (migration 0045; found by bench/growth.py, where
every custody scan read every stored bag). Plan shape, not timing."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from scaling_support import Recorder, explain, scans

from backend.db.repo import cases

BAGS = 20_000
BAG_OF_DIN = {"W000000000008": "CHU000000000008-APH-01"}


@pytest.fixture
async def registry(database_url: str) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO sites (code, name, kind, time_zone) VALUES
                   ('HIST-B', 'History', 'hospital', 'UTC');
               INSERT INTO users (username, full_name, password_hash) VALUES ('history', 'History', 'x');"""
        )
        await conn.execute(
            """INSERT INTO cases (coi, treatment_site, therapy, created_by, status)
               SELECT 'CHU' || lpad(g::text, 12, '0'), 'HIST-B', 'history',
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
        await conn.execute("ANALYZE")
        yield conn
    finally:
        await conn.close()


@pytest.mark.parametrize("sites", [None, ["HIST-B"], ["ELSEWHERE"]])
@pytest.mark.parametrize(
    ("ids", "dins"),
    [
        (["CHU000000000007-APH-01"], []),
        ([], ["W000000000008"]),
        (["CHU000000000007-APH-01"], ["W000000000008"]),
    ],
)
async def test_scan_finds_its_bags_through_indexes(
    registry: Any, sites: list[str] | None, ids: list[str], dins: list[str]
) -> None:
    recorder = Recorder()
    await cases.lock_visible_units(recorder, ids, dins, sites)
    [(sql, args)] = recorder.calls
    plan = await explain(registry, sql, args, analyze=True)
    used = scans(plan, "units")
    assert used, plan
    assert not [s for s in used if s.startswith("Seq Scan")], used
    # And the look-up still answers what it answered: the bags named, when the caller may see their case.
    found = {r["id"] for r in await registry.fetch(sql, *args)}
    named = set(ids) | {BAG_OF_DIN[d] for d in dins}
    assert found == (set() if sites == ["ELSEWHERE"] else named)
