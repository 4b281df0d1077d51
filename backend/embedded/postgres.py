"""A private PostgreSQL cluster in a directory of ours: for `celltrail up` without a database URL and for
tests that need a server they may stop or break.

Binaries come from the `pgserver` wheel when installed (so a fresh machine needs no system PostgreSQL),
otherwise from the machine's own installation.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import secrets
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from backend.embedded.pg_binaries import EmbeddedPostgresError, find_bin_dir, scram_verifier
from backend.embedded.ports import free_port
from backend.private_files import touch_private, write_private

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; when we are root we run it as this unprivileged system user.
SERVICE_USER = "celltrail-pg"
SUPERUSER = "postgres"
# Role and database names, generated passwords and SCRAM verifiers: psql variables are set from these only.
_PSQL_VALUE = re.compile(r"[A-Za-z0-9_$:+/=-]{1,200}")
HOST = "127.0.0.1"
# Only SCRAM passwords, only on the loopback (the Unix socket is disabled): no `trust` for anyone.
PG_HBA = (
    "# Celltrail's embedded PostgreSQL: every role signs in with its SCRAM password, on 127.0.0.1 only.\n"
    f"host all all {HOST}/32 scram-sha-256\n"
)


def _ensure_service_user() -> str:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
            capture_output=True,
        )
    return SERVICE_USER


class EmbeddedPostgres:
    """One cluster in `data_dir`, listening on 127.0.0.1 only (no Unix socket), every role, the
    `postgres` superuser included, signing in with a generated SCRAM password.

    The passwords are kept next to the data directory in `<data_dir>.pgpass` (mode 0600, libpq's
    password-file format, so `PGPASSFILE` points psql, pg_dump or asyncpg at it); nothing prints them.
    For production set CELLTRAIL_DATABASE_URL to a managed server instead.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        fast_unsafe: bool = False,
        bin_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.fast_unsafe = fast_unsafe
        self.bin_dir = bin_dir or find_bin_dir()
        self.user: str | None = _ensure_service_user() if os.geteuid() == 0 else None
        self.log_file = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.passfile = self.data_dir.parent / f"{self.data_dir.name}.pgpass"

    # ----------------------------------------------------------------------------------- credentials

    def passwords(self) -> dict[str, str]:
        """Role -> password, from the password file (empty before the first start)."""
        try:
            text = self.passfile.read_text()
        except FileNotFoundError:
            return {}
        found: dict[str, str] = {}
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) == 5 and not line.startswith("#"):
                found[fields[3]] = fields[4]
        return found

    def _remember(self, role: str) -> str:
        """The role's password, generated and written to the password file when it has none yet."""
        known = self.passwords()
        if role not in known:
            # URL-safe characters: nothing to escape in the password file, a URL or an SQL literal.
            known[role] = secrets.token_urlsafe(24)
            lines = "".join(f"{HOST}:*:*:{name}:{secret}\n" for name, secret in known.items())
            write_private(self.passfile, lines.encode())
        return known[role]

    def role_url(self, role: str, database: str, *, password: bool = True) -> str:
        """A URL for `role`; with the password in it unless `password=False` (what may be shown: the
        password is then read from `passfile`, e.g. through PGPASSFILE)."""
        if password and role == SUPERUSER and role not in self.passwords():
            # Asked before the first start: the password initdb will be given is chosen now.
            self.passfile.parent.mkdir(parents=True, exist_ok=True)
            self._remember(role)
        secret = self.passwords().get(role) if password else None
        credentials = f"{role}:{quote(secret, safe='')}" if secret else role
        return f"postgresql://{credentials}@{HOST}:{self.port}/{database}"

    @property
    def url(self) -> str:
        """The superuser's URL (database `postgres`), password included: for tests and tools, never shown."""
        return self.role_url(SUPERUSER, "postgres")

    def database_url(self, database: str) -> str:
        return self.role_url(SUPERUSER, database)

    def psql(
        self,
        sql: str,
        *,
        variables: Mapping[str, str] | None = None,
        role: str = SUPERUSER,
        database: str = "postgres",
    ) -> str:
        """Run SQL through psql as `role`. Values are psql variables (`:'name'` for a literal, `:"name"`
        for an identifier, quoted by psql), set on standard input like the statements and the password
        comes from the password file, so none of them appears in the process list."""
        preamble = ""
        for name, value in (variables or {}).items():
            if not _PSQL_VALUE.fullmatch(value):
                raise EmbeddedPostgresError(f"unexpected characters in the value of {name}")
            preamble += f"\\set {name} '{value}'\n"
        # Errors name the statement, never echo it (it may carry a verifier).
        preamble = "\\set VERBOSITY terse\n" + preamble
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-U",
                role,
                "-d",
                database,
            ],
            input=preamble + sql,
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "LC_ALL": "C.UTF-8",
                "PGPASSFILE": str(self.passfile),
                "PGCONNECT_TIMEOUT": "10",
            },
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"psql as {role} failed: {result.stderr.strip()}")
        return result.stdout

    def ensure_roles(self, roles: Iterable[str]) -> None:
        """Login roles with generated passwords (kept in `passfile`), created when missing. The server
        is sent the SCRAM verifier, never the password (so no log line can hold it)."""
        for role in roles:
            self.psql(
                "SELECT format('CREATE ROLE %I LOGIN', :'role')"
                " WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \\gexec\n"
                "ALTER ROLE :\"role\" LOGIN PASSWORD :'verifier';\n",
                variables={"role": role, "verifier": scram_verifier(self._remember(role))},
            )

    def ensure_database(self, name: str, owner: str) -> None:
        """Database `name` owned by `owner` (created, or handed over when it exists)."""
        self.psql(
            "SELECT format('CREATE DATABASE %I', :'name')"
            " WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name') \\gexec\n"
            'ALTER DATABASE :"name" OWNER TO :"owner";\n',
            variables={"name": name, "owner": owner},
        )

    def adopt_schema(self, database: str, owner: str) -> None:
        """Hand the tables, sequences and functions of `database`'s public schema to `owner` (a database
        an earlier Celltrail migrated as the superuser)."""
        self.psql(
            """SELECT format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, :'owner')
                 FROM pg_class c
                WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
                  AND pg_get_userbyid(c.relowner) <> :'owner'
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                    AND d.objid = c.oid AND d.deptype IN ('a', 'i')) \\gexec
               SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, :'owner')
                 FROM pg_proc p
                WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) <> :'owner'
               \\gexec
            """,
            variables={"owner": owner},
            database=database,
        )

    def _run(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "LC_ALL": "C.UTF-8", **(env or {})}
        full_env.pop("PGDATA", None)
        result = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            env=full_env,
            check=False,
            **self._identity(),
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            if self.log_file.exists():
                detail += "\n--- server log ---\n" + self.log_file.read_text(errors="replace")[-3000:]
            raise EmbeddedPostgresError(f"{args[0]} failed: {detail}")
        return result

    def _identity(self) -> dict[str, Any]:
        """Drop to the service user completely: keeping root's group would make the group bits of
        root-owned folders apply, which deny more than the 'other' bits."""
        if self.user is None:
            return {}
        entry = pwd.getpwnam(self.user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _allow_traverse(self) -> None:
        """The service user must be able to reach the data directory: grant traverse-only (o+x, no
        listing) on ancestors that lack it, e.g. pytest's 0700 temp folders."""
        if self.user is None:
            return
        for parent in self.data_dir.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                log.info("granting traverse permission", extra={"path": str(parent)})
                parent.chmod(mode | 0o001)

    def _hand_over(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._allow_traverse()
        self._hand_over(self.data_dir)
        touch_private(self.log_file)  # the server log quotes statements and their values
        self._hand_over(self.log_file)
        # The superuser's password reaches initdb through a file only the server's user can read.
        pwfile = self.data_dir.parent / f"{self.data_dir.name}.pwfile"
        write_private(pwfile, (self._remember(SUPERUSER) + "\n").encode())
        self._hand_over(pwfile)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_hba()
        conf = [
            f"listen_addresses = '{HOST}'",
            "password_encryption = 'scram-sha-256'",
            "unix_socket_directories = ''",
            "max_connections = 200",
            "shared_buffers = 128MB",
        ]
        if self.fast_unsafe:
            # Throw-away test clusters: durability costs time and buys nothing there.
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with (self.data_dir / "postgresql.auto.conf").open("a") as handle:
            handle.write("\n".join(conf) + "\n")

    def _write_hba(self) -> None:
        hba = self.data_dir / "pg_hba.conf"
        write_private(hba, PG_HBA.encode())
        self._hand_over(hba)

    def _secure_legacy(self) -> None:
        """A cluster made by an earlier Celltrail trusted every local user: give the superuser a
        password, then require passwords (pg_hba.conf, reloaded)."""
        hba = (self.data_dir / "pg_hba.conf").read_text()
        if SUPERUSER in self.passwords() and " trust" not in hba:
            return
        log.warning(
            "securing an embedded PostgreSQL that trusted local users", extra={"data_dir": str(self.data_dir)}
        )
        secret = self._remember(SUPERUSER)
        self.psql(
            "ALTER ROLE :\"role\" PASSWORD :'verifier';\n",
            variables={"role": SUPERUSER, "verifier": scram_verifier(secret)},
        )
        self._write_hba()
        self._run("pg_ctl", "-D", str(self.data_dir), "reload")

    def running_port(self) -> int | None:
        """The port of a server already running on this data directory (e.g. under `celltrail up`)."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists() or not self.running():
            return None
        lines = pid_file.read_text().splitlines()
        # postmaster.pid: pid, data dir, start time, port, ... (documented in PostgreSQL's pidfile.h)
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def start(self) -> None:
        if not self.initialised():
            log.info("initialising embedded PostgreSQL", extra={"data_dir": str(self.data_dir)})
            self.init()
        # Again at every start: a folder on the way may have been narrowed to 0700 since (Celltrail's
        # data directory is, whenever something private is created in it).
        self._allow_traverse()
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port}",
            "start",
        )
        self._secure_legacy()
        log.info("embedded PostgreSQL running", extra={"port": self.port, "data_dir": str(self.data_dir)})

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._allow_traverse()
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        result = subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"],
            capture_output=True,
            check=False,
            **self._identity(),
        )
        return result.returncode == 0
