"""Where the record keyring comes from (CELLTRAIL_RECORD_KEY_FILE, else <data dir>/record.key) and the
keyring this process links new custody events with.

One process serves one deployment, so the keyring is configured once at start (`configure`, called by
create_app and by the commands that write events), like the sign-in limits of backend.services.signing.
Verification never relies on it implicitly: callers pass the keyring they verify with."""

from __future__ import annotations

import logging
from pathlib import Path

from backend.domain.keyring import EMPTY, Keyring, KeyringError, new_key_line, parse_keyring
from backend.services import key_files
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
    text = key_files.read(
        path,
        configured=bool(settings.record_key_file),
        setting="RECORD_KEY_FILE",
        rotate_command="celltrail key rotate",
        error=RecordKeyError,
    )
    try:
        return parse_keyring(text)
    except KeyringError as exc:
        raise RecordKeyError(f"{PREFIX}RECORD_KEY_FILE: {path}: {exc}") from None


def add_key(path: Path) -> Keyring:
    """Append a new key (it becomes the current one; the older ones stay for verification). Creates the
    file, 0600, when it does not exist."""
    return parse_keyring(key_files.append(path, new_key_line()))


def ensure(settings: Settings) -> Keyring:
    """The keyring; when no file is configured and <data dir>/record.key does not exist yet, it is
    created (0600) with a first key, so a first run needs no setup. Created exclusively: processes
    starting at once (several workers) end up with the same single key."""
    if not settings.record_key_file:
        key_files.create_default(
            settings.record_key_path, new_key_line(), setting="RECORD_KEY_FILE", error=RecordKeyError
        )
    return load(settings)
