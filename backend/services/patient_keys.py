"""The patient keyring: AES-GCM keys that encrypt patient identity, kept in a file the database never holds
(CELLTRAIL_PATIENT_KEY_FILE, else <data dir>/patient.key), in the record keyring's format: one key per
line, base64 of 32 random bytes, `#` starts a comment, the last key is the current one. Rotation is
appending a line (`celltrail patient-key rotate`): the new key encrypts, the older ones still decrypt the
rows sealed under them until `celltrail patient-key reencrypt` has moved those rows to the newest key.

A key id is an HMAC of a fixed label under the key: it names the key beside each ciphertext without
revealing it. Someone who can read the database but not this file reads no patient's name."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.domain.keyring import mac
from backend.private_files import FILE_MODE, open_private, private_directory
from backend.settings import PREFIX, Settings, SettingsError

KEY_BYTES = 32
NONCE_BYTES = 12
_ID_LABEL = b"celltrail patient key id v1"

log = logging.getLogger(__name__)


class PatientKeyError(SettingsError):
    """The patient keyring cannot be used; the message names the file and what to do, never a key."""


class PatientKeyMissing(RuntimeError):
    """Patient identity was to be sealed or opened while this process holds no patient key."""


class Unsealable(ValueError):
    """A ciphertext that does not open under its key with its associated data: altered, or moved from
    another row."""


def key_id_of(secret: bytes) -> str:
    return mac(secret, _ID_LABEL)[:8].hex()


class PatientKey:
    __slots__ = ("_aead", "key_id")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise PatientKeyError(f"a patient key has exactly {KEY_BYTES} bytes")
        self._aead = AESGCM(secret)
        self.key_id = key_id_of(secret)

    def seal(self, plaintext: bytes, associated: bytes) -> tuple[bytes, bytes]:
        """(nonce, ciphertext with its tag); a fresh random nonce for every seal."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, associated)

    def open(self, nonce: bytes, ciphertext: bytes, associated: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, associated)
        except InvalidTag:
            raise Unsealable("the ciphertext does not verify under its key and case") from None

    def __repr__(self) -> str:  # never the secret, whatever gets logged
        return f"PatientKey({self.key_id})"


class PatientKeyring:
    __slots__ = ("_keys", "current")

    def __init__(self, keys: list[PatientKey]) -> None:
        self._keys = {k.key_id: k for k in keys}
        self.current: PatientKey | None = keys[-1] if keys else None

    def get(self, key_id: str) -> PatientKey | None:
        return self._keys.get(key_id)

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def __repr__(self) -> str:
        current = self.current.key_id if self.current else None
        return f"PatientKeyring({', '.join(self._keys)}; current {current})"


EMPTY = PatientKeyring([])
_configured: PatientKeyring = EMPTY


def configure(keyring: PatientKeyring) -> None:
    """The keyring this process seals and opens patient identity with (read once at start)."""
    global _configured
    _configured = keyring


def current() -> PatientKeyring:
    return _configured


def parse(text: str) -> PatientKeyring:
    keys = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            secret = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise PatientKeyError(f"line {number} is not a base64 key") from None
        try:
            keys.append(PatientKey(secret))
        except PatientKeyError as exc:
            raise PatientKeyError(f"line {number}: {exc}") from None
    if not keys:
        raise PatientKeyError("the patient keyring holds no key")
    return PatientKeyring(keys)


def new_key_line() -> str:
    secret = secrets.token_bytes(KEY_BYTES)
    return f"{base64.b64encode(secret).decode()}  # patient key id {key_id_of(secret)}\n"


def load(settings: Settings) -> PatientKeyring:
    path = settings.patient_key_path
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        if settings.patient_key_file:
            raise PatientKeyError(f"{PREFIX}PATIENT_KEY_FILE: there is no file at {path}") from None
        raise PatientKeyError(
            f"no patient key at {path}: create one with `celltrail patient-key rotate` (or set "
            f"{PREFIX}PATIENT_KEY_FILE to the mounted key file); the server creates it on its first start"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a keyring file"
        raise PatientKeyError(f"{PREFIX}PATIENT_KEY_FILE: {path} cannot be read ({reason})") from None
    try:
        return parse(text)
    except PatientKeyError as exc:
        raise PatientKeyError(f"{PREFIX}PATIENT_KEY_FILE: {path}: {exc}") from None


def add_key(path: Path) -> PatientKeyring:
    """Append a new key (the current one from now on); the file is created 0600 when missing."""
    private_directory(path.parent)
    with open_private(path, "ab") as handle:
        handle.write(new_key_line().encode("ascii"))
    return parse(path.read_text(encoding="ascii"))


def ensure(settings: Settings) -> PatientKeyring:
    """The keyring; <data dir>/patient.key is created (0600, exclusively, so workers starting at once end
    up with one key) when no file is configured and it does not exist yet."""
    path = settings.patient_key_path
    if not settings.patient_key_file:
        try:
            private_directory(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            pass
        except OSError as exc:
            raise PatientKeyError(
                f"no patient key at {path}, and it cannot be created there ({exc.strerror}): set "
                f"{PREFIX}DATA_DIR to a writable directory or {PREFIX}PATIENT_KEY_FILE to the key file"
            ) from None
        else:
            with open(fd, "wb") as handle:
                handle.write(new_key_line().encode("ascii"))
            log.warning(
                "created a new patient key; keep a copy of it apart from the database's backups",
                extra={"file": str(path)},
            )
    return load(settings)
