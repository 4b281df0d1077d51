"""Where the record keyring comes from (CELLTRAIL_RECORD_KEY_FILE, else <data dir>/record.key) and the
keyring this process links new custody events with.

One process serves one deployment, so the keyring is configured once at start (`configure`, called by
create_app and by the commands that write events), like the sign-in limits of backend.services.signing.
Verification never relies on it implicitly: callers pass the keyring they verify with."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from backend.domain.keyring import EMPTY, Keyring, KeyringError, new_key_line, parse_keyring
from backend.private_files import FILE_MODE, open_private, private_directory
from backend.settings import PREFIX, Settings, SettingsError


class RecordKeyError(SettingsError):
    """The record keyring cannot be used; the message names the file and what to do, never a key."""


class RecordKeyMissing(RuntimeError):
    """An event was to be recorded while this process holds no record key."""


log = logging.getLogger(__name__)
_configured: Keyring = EMPTY
_checkpoint_dir: Path | None = None


def configure(keyring: Keyring, checkpoint_dir: Path | None = None) -> None:
    """`checkpoint_dir`: where this process's checkpoints are, for records printed without a request's
    settings at hand (the vein-to-vein report names the checkpoint covering its last event)."""
    global _configured, _checkpoint_dir
    _configured = keyring
    if checkpoint_dir is not None:
        _checkpoint_dir = checkpoint_dir


def current() -> Keyring:
    return _configured


def checkpoint_dir() -> Path | None:
    return _checkpoint_dir


def load(settings: Settings) -> Keyring:
    path = settings.record_key_path
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        if settings.record_key_file:
            raise RecordKeyError(f"{PREFIX}RECORD_KEY_FILE: there is no file at {path}") from None
        raise RecordKeyError(
            f"no record key at {path}: create one with `celltrail key rotate` (or set "
            f"{PREFIX}RECORD_KEY_FILE to the mounted key file); the server creates it on its first start"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a keyring file"
        raise RecordKeyError(f"{PREFIX}RECORD_KEY_FILE: {path} cannot be read ({reason})") from None
    try:
        return parse_keyring(text)
    except KeyringError as exc:
        raise RecordKeyError(f"{PREFIX}RECORD_KEY_FILE: {path}: {exc}") from None


def add_key(path: Path) -> Keyring:
    """Append a new key (it becomes the current one; the older ones stay for verification). Creates the
    file, 0600, when it does not exist."""
    private_directory(path.parent)
    with open_private(path, "ab") as handle:
        handle.write(new_key_line().encode("ascii"))
    return parse_keyring(path.read_text(encoding="ascii"))


def ensure(settings: Settings) -> Keyring:
    """The keyring; when no file is configured and <data dir>/record.key does not exist yet, it is
    created (0600) with a first key, so a first run needs no setup. Created exclusively: processes
    starting at once (several workers) end up with the same single key."""
    path = settings.record_key_path
    if not settings.record_key_file:
        try:
            private_directory(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            pass
        except OSError as exc:
            raise RecordKeyError(
                f"no record key at {path}, and it cannot be created there ({exc.strerror}): set "
                f"{PREFIX}DATA_DIR to a writable directory or {PREFIX}RECORD_KEY_FILE to the key file"
            ) from None
        else:
            with open(fd, "wb") as handle:
                handle.write(new_key_line().encode("ascii"))
            log.warning(
                "created a new record key; keep a copy of it apart from the database's backups",
                extra={"file": str(path)},
            )
    return load(settings)
