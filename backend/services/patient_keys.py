"""The patient keyring: AES-GCM keys that encrypt patient identity, kept in a file the database never holds
(CELLTRAIL_PATIENT_KEY_FILE, else <data dir>/patient.key), in the record keyring's format: one key per
line, base64 of 32 random bytes, `#` starts a comment, the last key is the current one. Rotation is
appending a line (`celltrail patient-key rotate`): the new key encrypts, the older ones still decrypt the
rows sealed under them until `celltrail patient-key reencrypt` has moved those rows to the newest key.

A key id is an HMAC of a fixed label under the key: it names the key beside each ciphertext without
revealing it. Someone who can read the database but not this file reads no patient's name."""

from __future__ import annotations

import base64
import logging
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.domain.keyring import KeyringError, key_lines, mac
from backend.services import key_files
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


def _key_of_line(secret: bytes) -> PatientKey:
    try:
        return PatientKey(secret)
    except PatientKeyError as exc:
        raise KeyringError(str(exc)) from None


def parse(text: str) -> PatientKeyring:
    try:
        return PatientKeyring(key_lines(text, _key_of_line))
    except KeyringError as exc:
        raise PatientKeyError(str(exc).replace("the keyring", "the patient keyring")) from None


def new_key_line() -> str:
    secret = secrets.token_bytes(KEY_BYTES)
    return f"{base64.b64encode(secret).decode()}  # patient key id {key_id_of(secret)}\n"


def load(settings: Settings) -> PatientKeyring:
    path = settings.patient_key_path
    text = key_files.read(
        path,
        configured=bool(settings.patient_key_file),
        setting="PATIENT_KEY_FILE",
        rotate_command="celltrail patient-key rotate",
        error=PatientKeyError,
    )
    try:
        return parse(text)
    except PatientKeyError as exc:
        raise PatientKeyError(f"{PREFIX}PATIENT_KEY_FILE: {path}: {exc}") from None


def add_key(path: Path) -> PatientKeyring:
    """Append a new key (the current one from now on); the file is created 0600 when missing."""
    return parse(key_files.append(path, new_key_line()))


def ensure(settings: Settings) -> PatientKeyring:
    """The keyring; <data dir>/patient.key is created (0600, exclusively, so workers starting at once end
    up with one key) when no file is configured and it does not exist yet."""
    if not settings.patient_key_file:
        key_files.create_default(
            settings.patient_key_path, new_key_line(), setting="PATIENT_KEY_FILE", error=PatientKeyError
        )
    return load(settings)
