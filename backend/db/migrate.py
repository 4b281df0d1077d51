"""Numbered `.sql` migrations applied in order, each in its own transaction, under an advisory lock so
several backend replicas starting at once apply each migration exactly once."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from backend.db.types import Conn

log = logging.getLogger(__name__)

# Any constant shared by all replicas works; this one spells "celltrail" in ASCII-ish hex.
ADVISORY_LOCK_KEY = 0x0CE117A1
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled_migrations() -> list[Migration]:
    folder = resources.files("backend.db") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number: {versions}")
    return found


async def migrate(conn: Conn, migrations: list[Migration] | None = None) -> list[str]:
    """Apply what is missing; return the names applied (empty when the schema is current)."""
    todo = bundled_migrations() if migrations is None else migrations
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            row["version"]: row
            for row in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        }
        for migration in todo:
            previous = done.get(migration.version)
            if previous is not None:
                if previous["checksum"] != migration.checksum:
                    # An applied migration must never change: the database would silently differ from code.
                    raise MigrationError(
                        f"migration {migration.name} was changed after it was applied "
                        f"(applied as {previous['name']}); add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("applied migration", extra={"migration": migration.name})
            applied.append(migration.name)
        if migrations is None and (applied or await _app_grants_missing(conn)):
            await grant_app_role(conn)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    return applied


# ------------------------------------------------------------------------------------------ least privilege

# The role the backend runs as (CELLTRAIL_DATABASE_URL's user, or a role granted this one). It owns
# nothing; whoever runs the migrations owns the schema.
APP_ROLE = "celltrail_app"
# The record: the application may only add to these and read them (tables whose UPDATE or DELETE a
# `refuse_change` trigger refuses are treated alike, so a table a later migration adds with such a
# trigger is append-only for the application without being named here).
APPEND_ONLY_TABLES = ("custody_events", "signatures", "audit_log", "readings", "orphan_refusals")
# The only tables the application deletes rows from.
DELETING_TABLES = ("user_roles", "user_sites", "login_failures", "excursion_dirty")

_GRANTS = """
DO $grant$
DECLARE
    app constant text := '{app}';
    append_only constant text[] := '{append_only}';
    deleting constant text[] := '{deleting}';
    schema_name constant text := current_schema();
    t record;
    columns text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole))
        THEN
            RAISE NOTICE 'role % does not exist and this user may not create it: no grants made', app;
            RETURN;
        END IF;
        BEGIN
            -- A group role: log in as it (ALTER ROLE ... LOGIN PASSWORD) or as a member of it.
            EXECUTE format('CREATE ROLE %I NOLOGIN', app);
        EXCEPTION WHEN duplicate_object THEN NULL;
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', schema_name, app);
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', schema_name, app);
    IF EXISTS (SELECT 1 FROM pg_namespace n JOIN pg_roles r ON r.rolname = current_user
               WHERE n.nspname = schema_name AND (n.nspowner = r.oid OR r.rolsuper)) THEN
        -- PostgreSQL before 15 lets every role create objects in `public`.
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', schema_name);
    END IF;
    FOR t IN
        SELECT c.relname,
               c.relname = ANY (append_only) OR EXISTS (
                   SELECT 1 FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid
                    WHERE g.tgrelid = c.oid AND p.proname = 'refuse_change' AND g.tgenabled <> 'D'
                      AND g.tgtype & 16 <> 0 AND cardinality(g.tgattr::int2[]) = 0) AS no_update,
               c.relname = ANY (append_only) OR NOT (c.relname = ANY (deleting)) AS no_delete
          FROM pg_class c
         WHERE c.relnamespace = schema_name::regnamespace AND c.relkind IN ('r', 'p')
           AND c.relname <> 'schema_migrations'
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE %I FROM %I', t.relname, app);
        IF t.relname = 'cases' THEN
            -- The chain head and length move only through advance_chain_head (migration 0013).
            SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO columns
              FROM pg_attribute
             WHERE attrelid = format('%I.%I', schema_name, t.relname)::regclass AND attnum > 0
               AND NOT attisdropped AND attname NOT LIKE 'chain\\_%';
            EXECUTE format('GRANT SELECT ON TABLE %I TO %I', t.relname, app);
            EXECUTE format('GRANT INSERT (%s), UPDATE (%s) ON TABLE %I TO %I',
                           columns, columns, t.relname, app);
            CONTINUE;
        END IF;
        EXECUTE format('GRANT SELECT, INSERT ON TABLE %I TO %I', t.relname, app);
        IF NOT t.no_update THEN
            EXECUTE format('GRANT UPDATE ON TABLE %I TO %I', t.relname, app);
        END IF;
        IF NOT t.no_delete THEN
            EXECUTE format('GRANT DELETE ON TABLE %I TO %I', t.relname, app);
        END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', schema_name, app);
    IF to_regprocedure('advance_chain_head(text, bytea)') IS NOT NULL THEN
        REVOKE ALL ON FUNCTION advance_chain_head(text, bytea) FROM PUBLIC;
        EXECUTE format('GRANT EXECUTE ON FUNCTION advance_chain_head(text, bytea) TO %I', app);
    END IF;
    IF to_regprocedure('ensure_readings_partitions(integer, timestamptz)') IS NOT NULL THEN
        -- Housekeeping creates the coming months' readings partitions (migration 0041).
        REVOKE ALL ON FUNCTION ensure_readings_partitions(integer, timestamptz) FROM PUBLIC;
        EXECUTE format('GRANT EXECUTE ON FUNCTION ensure_readings_partitions(integer, timestamptz) TO %I',
                       app);
    END IF;
END
$grant$
"""


async def grant_app_role(conn: Conn) -> None:
    """Give the application role exactly what the backend needs on every table of the schema: SELECT and
    INSERT everywhere, UPDATE except on the append-only record (and except `cases.chain_*`), DELETE only
    where the backend deletes, never TRUNCATE, REFERENCES or TRIGGER; run as the schema's owner after
    migrations (and after a restore, which drops privileges). Creates the role (NOLOGIN) when missing and
    this user may; otherwise does nothing and says so."""
    await conn.execute(
        _GRANTS.format(
            app=APP_ROLE,
            append_only="{" + ",".join(APPEND_ONLY_TABLES) + "}",
            deleting="{" + ",".join(DELETING_TABLES) + "}",
        )
    )
    log.info("application role's privileges granted", extra={"role": APP_ROLE})


async def _app_grants_missing(conn: Conn) -> bool:
    """Cheap check at start: the role exists, reads every table and PUBLIC may not run the head
    function (a restore without privileges brings those defaults back)."""
    if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE) is None:
        return bool(
            await conn.fetchval("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
        )
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (
                   SELECT 1 FROM pg_class c
                    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
                      AND c.relname <> 'schema_migrations' AND NOT has_table_privilege($1, c.oid, 'SELECT'))
               OR EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'advance_chain_head' AND proacl IS NULL)""",
            APP_ROLE,
        )
    )


async def migrate_url(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
