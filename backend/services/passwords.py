"""Password hashing with Argon2id (the OWASP-recommended KDF); parameters live in the hash itself."""

from __future__ import annotations

import functools
import itertools
import re
import string
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from backend.domain.errors import InvalidInput

MIN_LENGTH = 10
_hasher = PasswordHasher()

# Verifying against this when the user does not exist keeps the response time the same either way,
# so login timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-a-timing-decoy")

# Around a stem people put digits, years and symbols; inside it they swap letters for look-alikes.
_AROUND = string.digits + string.punctuation + string.whitespace
_LEET = (
    str.maketrans({"@": "a", "4": "a", "3": "e", "1": "i", "!": "i", "0": "o", "$": "s", "5": "s", "7": "t"}),
    str.maketrans({"@": "a", "4": "a", "3": "e", "1": "l", "!": "i", "0": "o", "$": "s", "5": "s", "7": "t"}),
)
_REPEATED = re.compile(r"(.+?)\1+(.*)", re.DOTALL)
_ADVICE = "choose another: a few unrelated words make a long password that is easy to remember"


@functools.cache
def common_passwords() -> frozenset[str]:
    """The passwords (and the stems of passwords) attackers try first, shipped with Celltrail
    (backend/services/common_passwords.txt, built by scripts/common_passwords.py), lower case."""
    text = resources.files("backend.services").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def _is_common(password: str) -> bool:
    lowered = password.lower()
    listed = common_passwords()
    if lowered in listed:
        return True
    stem = lowered.strip(_AROUND)
    if len(stem) < 3:
        return False
    return stem in listed or any(stem.translate(table) in listed for table in _LEET)


def _is_repetitive(password: str) -> bool:
    """aaaaaaaaaa, abababab12, abcabcabc, 1234567890, 9876543210, zyxwvutsrq: too few different
    characters, one short run repeated, or one straight sequence (also with digits or symbols around)."""
    lowered = password.lower()
    if len(set(lowered)) < 4:
        return True
    stem = lowered.strip(_AROUND)
    return _repeats(lowered) or (len(stem) >= 6 and _repeats(stem))


def _repeats(lowered: str) -> bool:
    match = _REPEATED.fullmatch(lowered)
    if match and len(match.group(1)) <= len(lowered) // 2 and match.group(1).startswith(match.group(2)):
        return True
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(lowered)}
    return steps in ({1}, {-1}, {0})


def check_policy(password: str, username: str | None = None) -> None:
    """At least MIN_LENGTH characters, not a common password (nor one with digits or symbols added),
    not repetitive or sequential, and not the user name with a few characters added."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"the password must have at least {MIN_LENGTH} characters",
            field_errors={"password": f"at least {MIN_LENGTH} characters"},
        )
    if _is_repetitive(password):
        raise InvalidInput(
            f"the password is repetitive or a sequence (like aaaa, abab or 1234); {_ADVICE}",
            field_errors={"password": "repetitive or a sequence"},
        )
    if _is_common(password):
        raise InvalidInput(
            f"the password is one of the most common passwords, which are guessed first; {_ADVICE}",
            field_errors={"password": "a common password"},
        )
    name = (username or "").strip().lower()
    if len(name) >= 3 and name in password.lower():
        # The user name is the first thing a guesser tries: what is left without it must be a password.
        rest = re.sub(re.escape(name), "", password, flags=re.IGNORECASE)
        if len(rest) < MIN_LENGTH or _is_common(rest) or _is_repetitive(rest):
            raise InvalidInput(
                f"the password must not be built on the user name; {_ADVICE}",
                field_errors={"password": "contains the user name"},
            )


def hash_password(password: str, username: str | None = None) -> str:
    check_policy(password, username)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
