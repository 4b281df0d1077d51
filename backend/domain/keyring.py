"""The record keyring: secrets the database never holds. Each custody event's link is an HMAC-SHA-256
under one of these keys, so someone who can write the database but does not hold the key cannot compute
a link that verifies (the plain SHA-256 chain can be recomputed by anyone with Celltrail's code).

A keyring file holds one key per line (base64 of 32 random bytes; `#` starts a comment). The last key
is the current one: new events are linked with it, older events name the key they were linked with by
its id and verify with that key as long as it stays in the file. Rotation is appending a line.

A key id is derived from the key (an HMAC of a fixed label), so it names the key without revealing it
and cannot be attached to the wrong key by mistake."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from typing import TypeVar

from cryptography.hazmat.primitives import hashes, hmac

KEY_BYTES = 32
_ID_LABEL = b"celltrail record key id v1"


K = TypeVar("K")


class KeyringError(ValueError):
    """A keyring file that cannot be used; the message says why (never what the key is)."""


def mac(secret: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA-256 of the parts, concatenated (callers pass parts whose boundaries are unambiguous)."""
    h = hmac.HMAC(secret, hashes.SHA256())
    for part in parts:
        h.update(part)
    return h.finalize()


def key_id_of(secret: bytes) -> str:
    return mac(secret, _ID_LABEL)[:8].hex()


class RecordKey:
    __slots__ = ("_secret", "key_id")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise KeyringError(f"a record key has at least {KEY_BYTES} bytes")
        self._secret = secret
        self.key_id = key_id_of(secret)

    def mac(self, *parts: bytes) -> bytes:
        return mac(self._secret, *parts)

    def __repr__(self) -> str:  # never the secret, whatever gets logged
        return f"RecordKey({self.key_id})"


class Keyring:
    """Several keys, one current. An empty keyring links nothing and verifies nothing keyed."""

    __slots__ = ("_keys", "current")

    def __init__(self, keys: list[RecordKey]) -> None:
        self._keys = {k.key_id: k for k in keys}
        self.current: RecordKey | None = keys[-1] if keys else None

    def get(self, key_id: str) -> RecordKey | None:
        return self._keys.get(key_id)

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def __repr__(self) -> str:
        return f"Keyring({', '.join(self._keys)}; current {self.current.key_id if self.current else None})"


EMPTY = Keyring([])


def key_lines(text: str, make: Callable[[bytes], K]) -> list[K]:
    """Each key of a keyring file (one base64 key a line, `#` starts a comment), made by `make`, which
    raises KeyringError for a secret it cannot use; a file with no key is refused."""
    keys = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            secret = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(f"line {number} is not a base64 key") from None
        try:
            keys.append(make(secret))
        except KeyringError as exc:
            raise KeyringError(f"line {number}: {exc}") from None
    if not keys:
        raise KeyringError("the keyring holds no key")
    return keys


def parse_keyring(text: str) -> Keyring:
    return Keyring(key_lines(text, RecordKey))


def new_key_line() -> str:
    """A fresh key as one keyring line (with its id as a comment, so a person can tell lines apart)."""
    secret = secrets.token_bytes(KEY_BYTES)
    return f"{base64.b64encode(secret).decode()}  # key id {key_id_of(secret)}\n"
