"""Keyring files kept outside the database (the record keyring, the patient keyring): read with an error
that names the setting and what to do, and rotated by appending a line to a private file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from backend.private_files import FILE_MODE, open_private, private_directory
from backend.settings import PREFIX

log = logging.getLogger(__name__)


def read(path: Path, *, configured: bool, setting: str, rotate_command: str, error: type[Exception]) -> str:
    """The keyring file's text. `configured`: the path came from `setting` (a missing file is then an
    error of that setting); otherwise it is the data directory's default, created on the first start."""
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        if configured:
            raise error(f"{PREFIX}{setting}: there is no file at {path}") from None
        raise error(
            f"no {what(setting)} at {path}: create one with `{rotate_command}` (or set {PREFIX}{setting} to"
            " the mounted key file); the server creates it on its first start"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a keyring file"
        raise error(f"{PREFIX}{setting}: {path} cannot be read ({reason})") from None


def what(setting: str) -> str:
    """RECORD_KEY_FILE -> 'record key'."""
    return setting.removesuffix("_FILE").replace("_", " ").lower()


def append(path: Path, line: str) -> str:
    """Append a key line (the current key from now on; the older ones stay) to the file, created 0600 in
    a private directory when missing; the file's text after."""
    private_directory(path.parent)
    with open_private(path, "ab") as handle:
        handle.write(line.encode("ascii"))
    return path.read_text(encoding="ascii")


def create_default(path: Path, line: str, *, setting: str, error: type[Exception]) -> None:
    """Create the data directory's default keyring (0600) with a first key, so a first run needs no
    setup. Created exclusively: processes starting at once (several workers) end up with one key."""
    try:
        private_directory(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise error(
            f"no {what(setting)} at {path}, and it cannot be created there ({exc.strerror}): set "
            f"{PREFIX}DATA_DIR to a writable directory or {PREFIX}{setting} to the key file"
        ) from None
    with open(fd, "wb") as handle:
        handle.write(line.encode("ascii"))
    log.warning(
        f"created a new {what(setting)}; keep a copy of it apart from the database's backups",
        extra={"file": str(path)},
    )
