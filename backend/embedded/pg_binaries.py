"""Where the embedded PostgreSQL's programs come from, and the password verifiers it stores."""

from __future__ import annotations

import base64
import glob
import hashlib
import hmac
import importlib.util
import secrets
import shutil
import subprocess
from pathlib import Path

SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677; what libpq's
    PQencryptPasswordConn and psql's \\password send): the server never sees the password itself."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    encode = base64.b64encode
    return (
        f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{encode(salt).decode()}"
        f"${encode(stored_key).decode()}:{encode(server_key).decode()}"
    )


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
