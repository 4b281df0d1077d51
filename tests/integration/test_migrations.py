"""Migrations: ordered, transactional, idempotent, safe with several replicas starting at once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from backend.db.migrate import Migration, MigrationError, bundled_migrations, migrate


async def _fresh(postgres_url: str, name: str) -> str:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return postgres_url.rpartition("/")[0] + "/" + name


async def test_second_run_is_a_no_op(postgres_url):
    url = await _fresh(postgres_url, "migrate_twice")
    conn = await asyncpg.connect(url)
    try:
        first = await migrate(conn)
        second = await migrate(conn)
        recorded = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    assert first == [m.name for m in bundled_migrations()]
    assert second == []
    assert recorded == len(first)


async def test_concurrent_replicas_apply_each_migration_once(postgres_url):
    url = await _fresh(postgres_url, "migrate_race")
    conns = [await asyncpg.connect(url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    applied = [name for result in results for name in result]
    assert sorted(applied) == sorted(m.name for m in bundled_migrations())


async def test_failed_migration_leaves_nothing_behind(postgres_url):
    url = await _fresh(postgres_url, "migrate_fail")
    broken = [Migration(1, "0001_broken.sql", "CREATE TABLE half (id int); SELECT * FROM missing_table;")]
    conn = await asyncpg.connect(url)
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            await migrate(conn, broken)
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await conn.close()


async def test_an_edited_migration_is_refused(postgres_url):
    url = await _fresh(postgres_url, "migrate_edit")
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn, [Migration(1, "0001_a.sql", "CREATE TABLE a (id int);")])
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, [Migration(1, "0001_a.sql", "CREATE TABLE a (id bigint);")])
    finally:
        await conn.close()
