"""Files Celltrail writes that hold data (logs, broker configuration, dumps, exported records) are for
the account that runs it: mode 0600, directories 0700. Set at creation (os.open's mode, not a chmod
afterwards, so there is no moment another user could open the file) and again on a file that already
existed with a wider mode. The CLI also sets the process umask to 0077 (backend.cli.main), which covers
what child processes such as PostgreSQL and Mosquitto create."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Final

FILE_MODE: Final = 0o600
DIRECTORY_MODE: Final = 0o700
PRIVATE_UMASK: Final = 0o077


def private_directory(path: Path) -> Path:
    """Create `path` (and missing parents) readable by this user only; an existing one is narrowed."""
    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    path.chmod(DIRECTORY_MODE)
    return path


def open_private(path: Path, mode: str = "wb") -> BinaryIO:
    """`open(path, mode)` for "wb" or "ab", the file created (or narrowed to) 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC)
    if mode not in ("wb", "ab"):
        raise ValueError(f"open_private writes only ('wb' or 'ab'), not {mode!r}")
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        # Literal modes: typed as binary files. The caller closes the file (a with block).
        return open(fd, "ab") if mode == "ab" else open(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path, data: bytes) -> None:
    with open_private(path) as handle:
        handle.write(data)


def touch_private(path: Path) -> None:
    with open_private(path, "ab"):
        pass
