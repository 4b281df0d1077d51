"""Password hashing with Argon2id (the OWASP-recommended KDF); parameters live in the hash itself."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from backend.domain.errors import InvalidInput

MIN_LENGTH = 10
_hasher = PasswordHasher()

# Verifying against this when the user does not exist keeps the response time the same either way,
# so login timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-a-timing-decoy")


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"the password must have at least {MIN_LENGTH} characters",
            field_errors={"password": f"at least {MIN_LENGTH} characters"},
        )


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
