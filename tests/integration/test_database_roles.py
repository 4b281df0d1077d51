"""The database set-up of compose.yaml and of a managed PostgreSQL, run for real (issue 18): the roles
script makes the schema owner and the application role, the owner migrates (and grants), the backend's
role then reads and records but owns nothing; `celltrail migrate` takes the two URLs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from backend.db.migrate import migrate_url
from backend.embedded.postgres import EmbeddedPostgres
from tests.servers import start_postgres

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "postgres" / "celltrail-roles.sql"
OWNER_PASSWORD = "owner-password-for-tests"
APP_PASSWORD = "app-password-for-the-role-test"


def _roles_script(cluster: EmbeddedPostgres, **passwords: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PGPASSFILE": str(cluster.passfile), **passwords}
    args = ["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    return subprocess.run(
        [str(cluster.bin_dir / "psql"), *args, "-d", "postgres", "-f", str(SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


@pytest.fixture
def cluster(server_dir: Path):
    # Roles are the cluster's: a private one, so the session cluster's `celltrail_app` keeps its password.
    cluster = start_postgres(server_dir)
    try:
        yield cluster
    finally:
        cluster.stop("immediate")


def test_roles_script_then_owner_migrations_then_the_application_role(cluster: EmbeddedPostgres) -> None:
    missing = _roles_script(cluster)
    assert missing.returncode != 0
    passwords = {"CELLTRAIL_DB_OWNER_PASSWORD": OWNER_PASSWORD, "CELLTRAIL_DB_APP_PASSWORD": APP_PASSWORD}
    for _ in range(2):  # running it again changes nothing
        made = _roles_script(cluster, **passwords)
        assert made.returncode == 0, made.stderr
    for secret in (OWNER_PASSWORD, APP_PASSWORD):
        assert secret not in made.stdout + made.stderr

    base = f"127.0.0.1:{cluster.port}/celltrail"
    owner_url = f"postgresql://celltrail_owner:{OWNER_PASSWORD}@{base}"
    app_url = f"postgresql://celltrail_app:{APP_PASSWORD}@{base}"
    assert asyncio.run(migrate_url(owner_url))

    async def as_app() -> None:
        conn = await asyncpg.connect(app_url)
        try:
            owners = await conn.fetch(
                "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class "
                "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
            )
            assert [r["owner"] for r in owners] == ["celltrail_owner"]
            assert await conn.fetchval("SELECT count(*) FROM custody_events") == 0
            assert await conn.fetchval(
                "SELECT has_function_privilege('advance_chain_head(text, bytea)', 'EXECUTE')"
            )
            for statement in (
                "UPDATE custody_events SET detail = detail",
                "DELETE FROM audit_log",
                "UPDATE cases SET chain_head = NULL",
                "ALTER TABLE readings DISABLE TRIGGER USER",
                "SET session_replication_role = replica",
                "CREATE TABLE mine (x int)",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(as_app())
    # The command line takes the two URLs: migrations as the owner, never as the application role.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLTRAIL_")}
    env.update(CELLTRAIL_DATABASE_URL=app_url, CELLTRAIL_MIGRATION_DATABASE_URL=owner_url)
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "migrate"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the schema is up to date"
    # Migrating as the application role is refused by the database (it may not create anything).
    env.pop("CELLTRAIL_MIGRATION_DATABASE_URL")
    refused = subprocess.run(
        [sys.executable, "-m", "backend.cli", "migrate"], capture_output=True, text=True, env=env, check=False
    )
    assert refused.returncode != 0
