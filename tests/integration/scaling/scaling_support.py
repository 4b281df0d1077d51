"""Shared pieces of the scaling tests: a generated history of finished work, and plans read as trees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg

HISTORY_SQL = Path(__file__).with_name("history.sql")


async def load_history(
    conn: asyncpg.Connection[Any], *, loggers: int, legs: int, reading_loggers: int, step_minutes: int = 15
) -> None:
    """Finished legs (and one under way per logger) generated in SQL, in one round trip."""
    sql = HISTORY_SQL.read_text(encoding="utf-8").format(
        loggers=loggers, legs=legs, reading_loggers=reading_loggers, step=step_minutes
    )
    await conn.execute(sql)


class Recorder:
    """Stands in for a connection: keeps the statement and arguments a repository function sends, so the
    test explains exactly the statement the application runs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.calls.append((sql, args))
        return []

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, int]:
        self.calls.append((sql, args))
        return _ZEROS


# What the ingest statement returns, all counts zero.
_ZEROS = dict.fromkeys(
    ("known", "stored", "unknown", "unknown_new", "announced", "conflicting", "conflicting_new"), 0
)


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(nodes(child))
    return found


async def explain(
    conn: asyncpg.Connection[Any], sql: str, args: tuple[Any, ...], *, analyze: bool = False
) -> list[dict[str, Any]]:
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    raw = await conn.fetchval(f"EXPLAIN ({options}) {sql}", *args)
    return nodes(json.loads(raw)[0]["Plan"])


def _of(node: dict[str, Any], relation: str) -> bool:
    # A partition of a partitioned table is named after it (readings_y2026m12, readings_default).
    name = str(node.get("Relation Name", ""))
    return name == relation or name.startswith(relation + "_")


def scans(plan: list[dict[str, Any]], relation: str) -> list[str]:
    """How the plan reads a table (or its partitions): 'Seq Scan on <name>', or the index names of its
    index scans (a bitmap heap scan is named by the index under it)."""
    found: list[str] = []
    for node in plan:
        kind = node["Node Type"]
        if kind == "Seq Scan" and _of(node, relation):
            found.append(f"Seq Scan on {node['Relation Name']}")
        elif kind in ("Index Scan", "Index Only Scan") and _of(node, relation):
            found.append(node["Index Name"])
        elif kind == "Bitmap Heap Scan" and _of(node, relation):
            found.extend(n["Index Name"] for n in nodes(node) if n["Node Type"] == "Bitmap Index Scan")
    return found


async def whole_passes(conn: asyncpg.Connection[Any], plan: list[dict[str, Any]], table: str) -> list[str]:
    """The sequential scans of the plan over a table or one of its partitions that holds rows. The
    planner rightly scans an empty partition (a month still ahead) whole: that costs nothing."""
    populated = {
        str(name)
        for name in await conn.fetchval(f"SELECT array_agg(DISTINCT tableoid::regclass::text) FROM {table}")
        or []
    }
    return [s for s in scans(plan, table) if s.startswith("Seq Scan") and s.rpartition(" ")[2] in populated]
