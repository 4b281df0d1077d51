"""`celltrail backup` and `celltrail restore`: a PostgreSQL custom-format dump of the whole database, and
its restore into an empty one followed by a verification of every custody chain.

The tools are pg_dump and pg_restore from the same installation the embedded server comes from (the
`pgserver` wheel, PostgreSQL 16): a fresh machine needs no client packages, and pg_dump is never older
than the server it dumps, which pg_dump refuses.

Why restore does not trip the append-only triggers: a custom-format dump creates tables, loads their rows
with COPY and only then creates triggers, indexes and constraints (the post-data section), so the
`refuse_change` and `readings_mark_dirty` triggers do not exist while rows are loaded. `--clean` drops
tables (DROP is not UPDATE, DELETE or TRUNCATE, so those triggers do not fire either); it runs as one
psql transaction (see `_restore_clean`). The chain hashes
cover only row contents, so a restored chain verifies exactly as the original did, with the same record
key (CELLTRAIL_RECORD_KEY_FILE): without it, a chain is unverifiable, never verified.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from backend.db.migrate import grant_app_role
from backend.db.pool import create_pool
from backend.db.repo import catalog
from backend.domain.keyring import Keyring
from backend.embedded.pg_binaries import EmbeddedPostgresError, find_bin_dir
from backend.private_files import touch_private
from backend.services import chain_verify


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    tables: int


@dataclass(frozen=True)
class ChainReport:
    cases: int
    verified: int
    broken: list[str]
    # Chains whose events name a record key the restoring process does not hold (neither ok nor broken).
    unverifiable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RestoreReport:
    tables: int
    chains: ChainReport


def default_file_name(now: datetime | None = None) -> str:
    return f"celltrail-{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%SZ')}.dump"


def _tool(name: str) -> Path:
    try:
        path = find_bin_dir() / name
    except EmbeddedPostgresError as exc:
        raise BackupError(str(exc)) from exc
    if not path.exists():
        raise BackupError(f"{name} not found next to the PostgreSQL binaries in {path.parent}")
    return path


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and an environment carrying it: a password on the command line
    would be visible to every user in the process list."""
    parts = urlsplit(url)
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    if parts.password is None:
        return url, env
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    env["PGPASSWORD"] = parts.password
    return urlunsplit(parts._replace(netloc=netloc)), env


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise BackupError(f"{what} failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def _table_count(dump: Path) -> int:
    """Reads the dump's table of contents: proves the file is a complete, readable custom-format dump."""
    listing = _run([str(_tool("pg_restore")), "--list", str(dump)], dict(os.environ), "reading the dump")
    return sum(1 for line in listing.splitlines() if " TABLE DATA " in line)


def backup(url: str, out: Path) -> BackupReport:
    """Dump the database at `url` into `out` (written under a temporary name, then renamed, so a file
    with the final name is always a complete dump)."""
    target, env = _libpq(url)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    # Created 0600 before pg_dump writes into it (it keeps the mode of a file it overwrites): the dump holds
    # password hashes and pseudonymous patient references, and is never readable by others, even half done.
    touch_private(partial)
    _run(
        [str(_tool("pg_dump")), "--format=custom", "--compress=6", f"--file={partial}", f"--dbname={target}"],
        env,
        "pg_dump",
    )
    tables = _table_count(partial)
    partial.replace(out)
    return BackupReport(out, out.stat().st_size, tables)


async def _existing_relations(url: str) -> list[str]:
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await catalog.user_relations(conn)
    finally:
        await pool.close()


async def verify_chains(url: str, keyring: Keyring | None = None) -> ChainReport:
    """Check every case's keyed chain, as `GET /api/v1/cases/{coi}/verify` does (with this process's
    keyring unless given): the chains of a restored dump verify only with the key they were linked with."""
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            cois = await catalog.case_cois(conn)
            verdicts = [await chain_verify.verify(conn, coi, keyring) for coi in cois]
    finally:
        await pool.close()
    broken = [v.coi for v in verdicts if v.status == "broken"]
    unverifiable = [v.coi for v in verdicts if v.status == "unverifiable"]
    return ChainReport(len(cois), sum(v.ok for v in verdicts), broken, unverifiable)


async def _grant(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await grant_app_role(conn)
    finally:
        await conn.close()


async def _partitioned_tables(url: str) -> list[str]:
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await catalog.partitioned_tables(conn)
    finally:
        await pool.close()


def _restore_clean(url: str, dump: Path, target: str, env: dict[str, str]) -> None:
    """Replace the database's contents with the dump's, in one transaction. pg_restore's own --clean
    drops each partition's inherited key before its table, which PostgreSQL refuses; so the clean script
    is written out and run by psql in a single transaction, after dropping the partitioned tables (their
    partitions with them) first, in that same transaction: a failure anywhere leaves the database as it
    was."""
    quoted = [
        ".".join('"' + part.replace('"', '""') + '"' for part in name.split(".", 1))
        for name in asyncio.run(_partitioned_tables(url))
    ]
    with tempfile.TemporaryDirectory(prefix="celltrail-restore-") as folder:
        # The script holds every row of the dump: readable by this user only, and gone afterwards.
        os.chmod(folder, 0o700)
        script = Path(folder) / "restore.sql"
        _run(
            [
                str(_tool("pg_restore")),
                "--no-owner",
                "--no-privileges",
                "--clean",
                "--if-exists",
                f"--file={script}",
                str(dump),
            ],
            dict(os.environ),
            "pg_restore",
        )
        first = Path(folder) / "drop-partitioned.sql"
        first.write_text("".join(f"DROP TABLE IF EXISTS {name} CASCADE;\n" for name in quoted))
        _run(
            [
                str(_tool("psql")),
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                f"--dbname={target}",
                f"--file={first}",
                f"--file={script}",
            ],
            env,
            "restoring the dump",
        )


def restore(url: str, dump: Path, *, clean: bool = False) -> RestoreReport:
    """Restore `dump` into the database at `url`, in one transaction (all or nothing), then verify
    every custody chain. Refuses a database that already holds tables unless `clean` (which drops
    them first)."""
    if not dump.is_file():
        raise BackupError(f"no backup file at {dump}")
    tables = _table_count(dump)
    existing = asyncio.run(_existing_relations(url))
    if existing and not clean:
        shown = ", ".join(existing[:5]) + (", ..." if len(existing) > 5 else "")
        raise BackupError(
            f"the target database is not empty ({len(existing)} tables and sequences: {shown}); restore "
            "into an empty database, or pass --clean to drop its contents and replace them with the backup"
        )
    target, env = _libpq(url)
    args = [
        str(_tool("pg_restore")),
        f"--dbname={target}",
        # Owners and grants of the source server may not exist here (embedded `postgres` vs a managed
        # server's application role): everything belongs to the user who restores (the schema owner,
        # CELLTRAIL_MIGRATION_DATABASE_URL), and grant_app_role grants the application role afterwards.
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
    ]
    if clean:
        _restore_clean(url, dump, target, env)
    else:
        _run([*args, str(dump)], env, "pg_restore")
    # --no-privileges restored no grants: the application role gets its own back (and PUBLIC loses
    # EXECUTE on the chain-head function again).
    asyncio.run(_grant(url))
    return RestoreReport(tables, asyncio.run(verify_chains(url)))
