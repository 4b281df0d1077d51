"""The embedded PostgreSQL of `celltrail up` (issue 18): SCRAM passwords for every role, the superuser
included, kept 0600 beside the data directory; 127.0.0.1 only; a cluster an earlier Celltrail made with
`trust` is secured when it starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from backend.embedded.postgres import EmbeddedPostgres

REFUSED = (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)


async def _connect(cluster: EmbeddedPostgres, user: str, password: str | None) -> str:
    conn = await asyncpg.connect(
        host="127.0.0.1",
        port=cluster.port,
        user=user,
        password=password,
        database="postgres",
        passfile=str(cluster.data_dir.parent / "no-password-file"),
    )
    try:
        return str(await conn.fetchval("SELECT current_setting('listen_addresses')"))
    finally:
        await conn.close()


def _assert_passwords_required(cluster: EmbeddedPostgres) -> None:
    assert cluster.passfile.stat().st_mode & 0o777 == 0o600
    hba = (cluster.data_dir / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]
    assert rules == [["host", "all", "all", "127.0.0.1/32", "scram-sha-256"]]
    for user in ("postgres", "nobody"):
        with pytest.raises(REFUSED):
            asyncio.run(_connect(cluster, user, None))
        with pytest.raises(REFUSED):
            asyncio.run(_connect(cluster, user, "guessed"))
    assert asyncio.run(_connect(cluster, "postgres", cluster.passwords()["postgres"])) == "127.0.0.1"


def test_every_role_needs_its_password_and_a_trusting_cluster_is_secured(server_dir: Path) -> None:
    cluster = EmbeddedPostgres(server_dir / "pgdata", fast_unsafe=True)
    cluster.start()
    try:
        _assert_passwords_required(cluster)
        cluster.ensure_roles(["celltrail_owner", "celltrail_app"])
        cluster.ensure_database("celltrail", "celltrail_owner")
        passwords = cluster.passwords()
        assert set(passwords) == {"postgres", "celltrail_owner", "celltrail_app"}
        with pytest.raises(REFUSED):
            asyncio.run(_connect(cluster, "celltrail_app", None))
        first_password = passwords["postgres"]
    finally:
        cluster.stop("immediate")

    # What an earlier Celltrail left: `trust` for everyone on the loopback, no password file.
    (cluster.data_dir / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
    cluster.passfile.unlink()
    again = EmbeddedPostgres(server_dir / "pgdata", fast_unsafe=True)
    again.start()
    try:
        _assert_passwords_required(again)
        assert again.passwords()["postgres"] != first_password
        # Its database, migrated as the superuser back then, is handed to the schema owner.
        again.psql("CREATE DATABASE legacy")
        again.psql("CREATE TABLE old_record (id serial PRIMARY KEY)", database="legacy")
        again.ensure_roles(["celltrail_owner"])
        again.ensure_database("legacy", "celltrail_owner")
        again.adopt_schema("legacy", "celltrail_owner")
        owners = again.psql(
            "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace",
            database="legacy",
        )
        assert owners.strip() == "celltrail_owner"
    finally:
        again.stop("immediate")
