"""The scanner's login state: backend URL and token, in a 0600 file in the user's config directory.

``CELLTRAIL_SCANNER_CONFIG_DIR`` overrides the directory; otherwise ``$XDG_CONFIG_HOME/celltrail``
(``~/.config/celltrail``), or ``%APPDATA%\\celltrail`` on Windows. The offline queue lives beside it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import msgspec

CONFIG_FILE: Final = "scanner.json"
QUEUE_FILE: Final = "scanner-queue.sqlite3"


class User(msgspec.Struct, frozen=True):
    username: str
    full_name: str = ""
    roles: list[str] = []
    sites: list[str] = []


class ScannerConfig(msgspec.Struct, frozen=True):
    backend: str | None = None
    token: str | None = None
    expires_at: str | None = None
    user: User | None = None


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    override = env.get("CELLTRAIL_SCANNER_CONFIG_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32" and env.get("APPDATA"):
        return Path(env["APPDATA"]) / "celltrail"
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "celltrail"


def load_config(directory: Path) -> ScannerConfig:
    path = directory / CONFIG_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ScannerConfig()
    try:
        return msgspec.json.decode(data, type=ScannerConfig)
    except msgspec.DecodeError as exc:
        raise ValueError(f"{path} is not a valid scanner config ({exc}); log in again") from exc


def save_config(directory: Path, config: ScannerConfig) -> Path:
    """Write atomically with 0600 permissions: the file holds a bearer token."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / CONFIG_FILE
    temporary = directory / f".{CONFIG_FILE}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, msgspec.json.format(msgspec.json.encode(config)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temporary, 0o600)  # the umask cannot widen it, but an existing file keeps its old mode
    os.replace(temporary, path)
    return path


def resolve_backend(option: str | None, env: Mapping[str, str], config: ScannerConfig) -> str | None:
    """``--backend``, else ``CELLTRAIL_BACKEND_URL``, else the backend logged in to; no trailing slash."""
    url = option or env.get("CELLTRAIL_BACKEND_URL") or config.backend
    return url.rstrip("/") if url else None
