"""Questions about the database itself rather than its rows: used by backup and restore."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.db.types import Conn


async def user_relations(conn: Conn) -> list[str]:
    """Tables, views and sequences outside PostgreSQL's own schemas: a database without any is empty."""
    rows = await conn.fetch(
        """SELECT n.nspname || '.' || c.relname AS name
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
             AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
           ORDER BY 1"""
    )
    return [str(r["name"]) for r in rows]


async def case_cois(conn: Conn) -> list[str]:
    return [str(r["coi"]) for r in await conn.fetch("SELECT coi FROM cases ORDER BY coi")]


async def partitioned_tables(conn: Conn) -> list[str]:
    """Partitioned tables (schema.name) outside PostgreSQL's own schemas: a clean restore drops them with
    their partitions before anything else."""
    rows = await conn.fetch(
        """SELECT n.nspname || '.' || c.relname AS name
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind = 'p' AND NOT c.relispartition
             AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           ORDER BY 1"""
    )
    return [str(r["name"]) for r in rows]
