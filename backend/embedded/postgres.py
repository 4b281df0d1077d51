"""A private PostgreSQL cluster in a directory of ours: for `celltrail up` without a database URL and for
tests that need a server they may stop or break.

Binaries come from the `pgserver` wheel when installed (so a fresh machine needs no system PostgreSQL),
otherwise from the machine's own installation.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backend.embedded.ports import free_port
from backend.private_files import touch_private

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; when we are root we run it as this unprivileged system user.
SERVICE_USER = "celltrail-pg"


class EmbeddedPostgresError(RuntimeError):
    pass


def find_bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "pginstall" / "bin"
            if (candidate / "pg_ctl").exists():
                return candidate
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "pg_ctl").exists():
            return candidate
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version_key)
    if versions:
        return Path(versions[-1]).parent
    raise EmbeddedPostgresError(
        "no PostgreSQL binaries found: install the server extra (`pip install celltrail[server]`, which "
        "brings pgserver) or set CELLTRAIL_DATABASE_URL to an existing server"
    )


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name.split(".")[0])
    except ValueError:
        return 0


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
    """One cluster in `data_dir`, listening on 127.0.0.1 only, trust auth for the `postgres` superuser.

    Trust is safe here because the server binds to loopback and its socket directory is disabled; for
    production set CELLTRAIL_DATABASE_URL to a managed server instead.
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

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

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
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )
        conf = [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 200",
            "shared_buffers = 128MB",
        ]
        if self.fast_unsafe:
            # Throw-away test clusters: durability costs time and buys nothing there.
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with (self.data_dir / "postgresql.auto.conf").open("a") as handle:
            handle.write("\n".join(conf) + "\n")

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
        log.info("embedded PostgreSQL running", extra={"port": self.port, "data_dir": str(self.data_dir)})

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        result = subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"],
            capture_output=True,
            check=False,
            **self._identity(),
        )
        return result.returncode == 0
