"""The password rule: long enough, not a common password (nor one dressed up with digits, symbols or
look-alike characters), not repetitive or a sequence, not the user name with a few characters added."""

from __future__ import annotations

import pytest

from backend.domain.errors import InvalidInput
from backend.services.passwords import MIN_LENGTH, check_policy, common_passwords, hash_password


def refusal(password: str, username: str | None = None) -> str:
    with pytest.raises(InvalidInput) as refused:
        check_policy(password, username)
    assert refused.value.detail  # a sentence a person can act on
    return refused.value.field_errors["password"]


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("correct horse battery", "petra"),
        ("admin-password-for-tests", "admin"),  # the user name, and enough besides it
        ("petra's right password", "petra"),
        ("celltrail-admin", "admin"),
        ("celltrail-demo", "pharmacist"),
        ("a brand new secret passphrase", None),
        ("Tr0ub4dor&3-horse", None),
        ("8264019375", None),
        ("long enough pw", "petra"),
    ],
)
def test_good_passwords_pass(password: str, username: str | None) -> None:
    check_policy(password, username)


def test_too_short() -> None:
    assert refusal("x9!kQ") == f"at least {MIN_LENGTH} characters"


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaa",
        "AAAAAAAAAAAA",
        "abababababab",
        "abcabcabcabc",
        "1111122222",
        "abcdefghij",
        "0123456789",
        "9876543210",
        "zyxwvutsrqpo",
        "abababab12",
        "!!abcabcabc!!",
        "he11ohe11o!",
    ],
)
def test_repetitive_and_sequential_passwords_are_refused(password: str) -> None:
    assert refusal(password) == "repetitive or a sequence"


@pytest.mark.parametrize(
    "password",
    [
        "1234567890",
        "qwertyuiop",
        "password123",
        "Password1234",
        "iloveyou123",
        "1q2w3e4r5t",
        "P@ssw0rd2024!",
        "Summer2024!!",
        "michael1984!",
        "!!football!!",
        "administrator",
        "qwerty123456",
        "Liverpool1892",
        "Sunshine-2023",
    ],
)
def test_common_passwords_are_refused(password: str) -> None:
    assert refusal(password) == "a common password"


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("petra1234567", "petra"),
        ("Petra-Petra-2024", "petra"),
        ("xx-PETRA-MUELLER-xx", "petra-mueller"),
        ("coordinator-1", "coordinator"),
    ],
)
def test_passwords_built_on_the_user_name_are_refused(password: str, username: str) -> None:
    assert refusal(password, username) == "contains the user name"


def test_the_list_ships_with_the_package() -> None:
    listed = common_passwords()
    assert len(listed) > 10_000
    assert {"password", "123456", "qwertyuiop", "iloveyou"} <= listed
    assert all(entry == entry.lower() for entry in listed)


def test_hashing_applies_the_rule() -> None:
    with pytest.raises(InvalidInput):
        hash_password("aaaaaaaaaa")
    with pytest.raises(InvalidInput):
        hash_password("petra-0000000", "petra")
    assert hash_password("correct horse battery", "petra").startswith("$argon2id$")
