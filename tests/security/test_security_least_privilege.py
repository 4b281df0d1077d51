"""Least privilege (issue 18), against the real PostgreSQL: the backend's runtime role (`celltrail_app`,
what the test app connects as) may only add to and read the record, never move a chain head except
through `advance_chain_head` (which accepts only a stored event extending the chain), and can neither
change the schema, disable triggers nor switch to replica mode. The superuser's URL (`database_url`) is
what an insider with the owner's or the administrator's rights would use; here it only sets things up."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from backend.db.migrate import APP_ROLE, APPEND_ONLY_TABLES, DELETING_TABLES, grant_app_role
from tests.integration.journey import build_world

DENIED = asyncpg.InsufficientPrivilegeError


@pytest.fixture
async def as_app(app_database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    conn = await asyncpg.connect(app_database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def as_superuser(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _tables(conn: asyncpg.Connection[Any]) -> dict[str, str]:
    """Every table of the schema with its first plain (not identity, not generated) column."""
    rows = await conn.fetch(
        """SELECT c.relname, (SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0
                       AND NOT attisdropped AND attidentity = '' AND attgenerated = ''
                     ORDER BY attnum LIMIT 1) AS col
             FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
              AND c.relname <> 'schema_migrations'"""
    )
    return {r["relname"]: r["col"] for r in rows}


async def _refused_by_trigger(conn: asyncpg.Connection[Any], what: int) -> set[str]:
    rows = await conn.fetch(
        """SELECT DISTINCT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
             JOIN pg_proc p ON p.oid = g.tgfoid
            WHERE p.proname = 'refuse_change' AND g.tgtype & $1 <> 0 AND cardinality(g.tgattr::int2[]) = 0""",
        what,
    )
    return {r["relname"] for r in rows}


async def test_the_application_role_only_inserts_and_reads_the_record(as_app, as_superuser):
    assert await as_app.fetchval("SELECT current_user") == APP_ROLE
    tables = await _tables(as_superuser)
    record = set(APPEND_ONLY_TABLES) | await _refused_by_trigger(as_superuser, 16)
    assert set(APPEND_ONLY_TABLES) <= set(tables)
    for table in sorted(record):
        column = tables[table]
        for statement in (
            f'UPDATE "{table}" SET "{column}" = "{column}"',
            f'DELETE FROM "{table}"',
            f'TRUNCATE "{table}"',
        ):
            with pytest.raises(DENIED):
                await as_app.execute(statement)
        # Reading and adding are what the application does with the record.
        await as_app.fetch(f'SELECT * FROM "{table}" LIMIT 1')
        assert await as_app.fetchval("SELECT has_table_privilege(current_user, $1, 'INSERT')", table)


async def test_every_table_grants_exactly_what_the_application_uses(as_app, as_superuser):
    tables = await _tables(as_superuser)
    no_update = set(APPEND_ONLY_TABLES) | await _refused_by_trigger(as_superuser, 16)
    for table in tables:
        granted = {
            privilege
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
            if await as_app.fetchval("SELECT has_table_privilege(current_user, $1, $2)", table, privilege)
        }
        # `cases`: INSERT and UPDATE are granted column by column (below), so not on the whole table.
        expected = {"SELECT"} if table == "cases" else {"SELECT", "INSERT"}
        if table not in no_update and table != "cases":
            expected.add("UPDATE")
        if table in DELETING_TABLES:
            expected.add("DELETE")
        assert granted == expected, table
    # The chain columns of `cases` are not the application's to write, whatever else of the row is.
    assert await as_app.fetchval("SELECT has_column_privilege(current_user, 'cases', 'status', 'UPDATE')")
    for column in ("chain_head", "chain_length"):
        for privilege in ("UPDATE", "INSERT"):
            assert not await as_app.fetchval(
                "SELECT has_column_privilege(current_user, 'cases', $1, $2)", column, privilege
            ), (column, privilege)


async def test_a_head_that_does_not_extend_the_chain_is_refused(client, as_app, as_superuser):
    world = await build_world(client)
    coi = await world.new_case()
    await world.unit("nurse", coi, "APH", "USZ-APH")
    length, head = await as_app.fetchrow("SELECT chain_length, chain_head FROM cases WHERE coi = $1", coi)
    assert length >= 2
    assert head is not None

    # Written directly: no privilege on the column.
    with pytest.raises(DENIED):
        await as_app.execute("UPDATE cases SET chain_head = $2 WHERE coi = $1", coi, os.urandom(32))
    with pytest.raises(DENIED):
        await as_app.execute("UPDATE cases SET chain_length = chain_length - 1 WHERE coi = $1", coi)
    # Through the function: only to a stored event whose previous hash is the head.
    with pytest.raises(asyncpg.CheckViolationError):
        await as_app.execute("SELECT advance_chain_head($1, $2)", coi, os.urandom(32))
    with pytest.raises(asyncpg.CheckViolationError):
        await as_app.execute("SELECT advance_chain_head($1, $2)", coi, head)  # not a new head
    previous = await as_app.fetchval(
        "SELECT prev_hash FROM custody_events WHERE coi = $1 AND seq = $2", coi, length
    )
    with pytest.raises(asyncpg.CheckViolationError):
        await as_app.execute("SELECT advance_chain_head($1, $2)", coi, previous)  # backwards
    # A forged append that does not extend the head is refused as a whole: the row is not stored.
    event = dict(
        await as_superuser.fetchrow("SELECT * FROM custody_events WHERE coi = $1 AND seq = $2", coi, length)
    )
    columns = [name for name in event if name != "id"]
    forged = {**event, "seq": length + 1, "prev_hash": os.urandom(32), "hash": os.urandom(32)}
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    names = ", ".join(columns)
    with pytest.raises(asyncpg.CheckViolationError):
        await as_app.execute(
            f"INSERT INTO custody_events ({names}) VALUES ({placeholders})",
            *[forged[name] for name in columns],
        )
    assert await as_app.fetchrow("SELECT chain_length, chain_head FROM cases WHERE coi = $1", coi) == (
        length,
        head,
    )
    # The record still verifies, and the next scan still appends.
    verified = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/verify")
    assert verified["ok"], verified
    await world.unit("nurse", coi, "APH", "USZ-APH")
    assert await as_app.fetchval("SELECT chain_length FROM cases WHERE coi = $1", coi) == length + 1


async def test_the_application_role_cannot_change_the_schema_or_switch_off_triggers(as_app):
    role = await as_app.fetchrow(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication FROM pg_roles "
        "WHERE rolname = current_user"
    )
    assert not any(role.values())
    for statement in (
        "ALTER TABLE custody_events DISABLE TRIGGER custody_events_append_only",
        "ALTER TABLE custody_events DISABLE TRIGGER ALL",
        "ALTER TABLE readings DISABLE TRIGGER USER",
        "ALTER TABLE cases ADD COLUMN note text",
        "DROP TRIGGER custody_events_append_only ON custody_events",
        "DROP TABLE audit_log",
        "DROP FUNCTION refuse_change() CASCADE",
        "CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE sql AS 'SELECT NULL'",
        "ALTER FUNCTION advance_chain_head(text, bytea) SECURITY INVOKER",
        "CREATE TABLE mine (x int)",
        "SET session_replication_role = replica",
        "ALTER ROLE celltrail_app SUPERUSER",
        "ALTER ROLE celltrail_app BYPASSRLS",
    ):
        with pytest.raises(DENIED):
            await as_app.execute(statement)
    assert await as_app.fetchval("SHOW session_replication_role") == "origin"


async def test_tables_added_by_a_later_migration_are_granted_by_their_triggers(as_app, as_superuser):
    await as_superuser.execute(
        """CREATE TABLE later_record (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
           CREATE TRIGGER later_record_append_only BEFORE UPDATE OR DELETE ON later_record
               FOR EACH ROW EXECUTE FUNCTION refuse_change();
           CREATE TABLE later_state (id serial PRIMARY KEY, note text)"""
    )
    await grant_app_role(as_superuser)
    await as_app.execute(
        "INSERT INTO later_record (note) VALUES ('a'); INSERT INTO later_state (note) VALUES ('b')"
    )
    await as_app.execute("UPDATE later_state SET note = 'c'")
    with pytest.raises(DENIED):
        await as_app.execute("UPDATE later_record SET note = 'c'")
    with pytest.raises(DENIED):
        await as_app.execute("DELETE FROM later_state")
