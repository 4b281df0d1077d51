"""Check characters: ISO/IEC 7064 MOD 37-2 (ISBT 128) and the GS1 check digit."""

import re
from typing import Final

from celltrail_shared.identifiers.errors import IdentifierError

MOD37_CHARS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
MOD37_VALUES: Final = {char: value for value, char in enumerate(MOD37_CHARS)}
DIGITS = re.compile(r"[0-9]+")


def mod37_2(chars: str) -> str:
    """ISO/IEC 7064 MOD 37-2 check character over ``chars`` (``0-9``, ``A-Z``); one of ``0-9A-Z*``."""
    if not chars:
        raise IdentifierError("check", "cannot compute a MOD 37-2 check character over an empty string")
    total = 0
    for position, char in enumerate(chars, start=1):
        value = MOD37_VALUES.get(char, 36)
        if value == 36:
            raise IdentifierError(
                "check", f"character {char!r} at position {position} is not 0-9 or A-Z (MOD 37-2 input)"
            )
        total = ((total + value) * 2) % 37
    return MOD37_CHARS[(38 - total) % 37]


def mod37_value(check: str) -> int:
    """Numeric value (0-36) of a MOD 37-2 check character."""
    value = MOD37_VALUES.get(check)
    if value is None or len(check) != 1:
        raise IdentifierError("check", f"{check!r} is not a MOD 37-2 check character (0-9, A-Z or *)")
    return value


def gs1_check_digit(digits: str) -> int:
    """GS1 check digit over the data digits: weights 3,1,3,1... from the rightmost digit."""
    if not DIGITS.fullmatch(digits):
        raise IdentifierError("check", f"GS1 check digit needs digits 0-9 only, got {digits!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10
