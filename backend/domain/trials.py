"""Investigational cases: a case that belongs to a clinical trial, and what its labels must say.

The subject identifier is the patient's pseudonym in the trial. Who the subject is stays in the trial
site's own records (its subject identification log), so a trial case holds no patient reference, birth
year or patient identity: Celltrail never becomes a second place where the code can be broken."""

from __future__ import annotations

import re
from typing import Final

import msgspec

# EU CT number (Regulation 536/2014, CTIS: 2024-512345-12-00), EudraCT number (2019-001234-56) or
# ClinicalTrials.gov id (NCT01234567).
# (`(?!\n)$`: Python's `$` alone also matches before a final newline.)
REGISTER_PATTERN: Final = (
    r"^([0-9]{4}-[0-9]{6}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{6}-[0-9]{2}|NCT[0-9]{8})(?!\n)$"
)
# Protocol, site and subject codes as sponsors write them: letters, digits and a few separators, no
# spaces at either end (a label prints them as given).
CODE_PATTERN: Final = r"^[A-Za-z0-9]([A-Za-z0-9 ._/-]*[A-Za-z0-9])?(?!\n)$"
SPONSOR_PATTERN: Final = r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?(?!\n)$"
# The limits keep the investigational statement on a bag label and a wristband (docs/product-kinds.md).
MAX_REGISTER: Final = 40
MAX_PROTOCOL: Final = 30
MAX_SITE_NUMBER: Final = 10
MAX_SUBJECT: Final = 20
MAX_SPONSOR: Final = 40


class Trial(msgspec.Struct, frozen=True, kw_only=True):
    register: str
    protocol: str
    site_number: str
    subject: str
    sponsor: str

    def check(self) -> None:
        """Raise ValueError naming the first field that is not as the patterns above allow (the API's
        schema checks them on the way in; this guards every other caller)."""
        limits = (
            ("register", REGISTER_PATTERN, MAX_REGISTER),
            ("protocol", CODE_PATTERN, MAX_PROTOCOL),
            ("site_number", CODE_PATTERN, MAX_SITE_NUMBER),
            ("subject", CODE_PATTERN, MAX_SUBJECT),
            ("sponsor", SPONSOR_PATTERN, MAX_SPONSOR),
        )
        for field, pattern, limit in limits:
            value = getattr(self, field)
            if len(value) > limit or not re.fullmatch(pattern, value):
                raise ValueError(field)

    def as_data(self) -> dict[str, str]:
        return msgspec.structs.asdict(self)


def trial_of(
    register: str | None,
    protocol: str | None,
    site_number: str | None,
    subject: str | None,
    sponsor: str | None,
) -> Trial | None:
    """The trial a stored case row names (None: not a trial case; the table keeps them all or none)."""
    if register is None or protocol is None or site_number is None or subject is None or sponsor is None:
        return None
    return Trial(
        register=register, protocol=protocol, site_number=site_number, subject=subject, sponsor=sponsor
    )
