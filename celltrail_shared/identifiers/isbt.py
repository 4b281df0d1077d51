"""ISBT 128 identifiers (COI, DIN) and the Celltrail unit id built on the COI."""

import re
from enum import StrEnum
from typing import Final

import msgspec

from celltrail_shared.identifiers.checks import MOD37_CHARS, mod37_2, mod37_value
from celltrail_shared.identifiers.errors import IdentifierError

# --------------------------------------------------------------------------------------- shared rules

_FIN = re.compile(r"[A-NP-Z1-9][0-9]{4}")
_YEAR = re.compile(r"[0-9]{2}")
_COI_SEQUENCE = re.compile(r"[A-Z0-9]{6}")
_DIN_SEQUENCE = re.compile(r"[0-9]{6}")


def _check_fin(field: str, fin: str) -> None:
    if _FIN.fullmatch(fin):
        return
    if len(fin) != 5:
        raise IdentifierError(field, f"FIN must be 5 characters, got {len(fin)} ({fin!r})")
    if not re.fullmatch(r"[A-NP-Z1-9]", fin[0]):
        raise IdentifierError(
            field, f"FIN must start with A-N, P-Z or 1-9 (not O or 0), got {fin[0]!r} in {fin!r}"
        )
    raise IdentifierError(field, f"FIN characters 2-5 must be digits, got {fin[1:]!r} in {fin!r}")


def _check_year(field: str, year: str) -> None:
    if not _YEAR.fullmatch(year):
        raise IdentifierError(field, f"year must be 2 digits, got {year!r}")


def _check_against(field: str, what: str, body: str, given: str) -> None:
    expected = mod37_2(body)
    if given != expected:
        raise IdentifierError(
            field, f"{what} check character is {given!r} but {body} implies {expected!r}: re-read or re-key"
        )


def _split_eye_readable(field: str, what: str, text: str, body_length: int) -> tuple[str, str]:
    """Split ``text`` (spaces and a bracketed check allowed) into (body, check)."""
    compact = re.sub(r"\s+", "", text.upper())
    if compact.endswith("]"):
        if len(compact) < 3 or compact[-3] != "[":
            raise IdentifierError(
                field, f"{what} check character must be one character in brackets: {text!r}"
            )
        compact = compact[:-3] + compact[-2]
    if "[" in compact or "]" in compact:
        raise IdentifierError(field, f"{what} has brackets around something other than the check: {text!r}")
    if len(compact) == body_length:
        raise IdentifierError(
            field, f"{what} eye-readable form needs its check character at the end: {text!r}"
        )
    if len(compact) != body_length + 1:
        raise IdentifierError(
            field,
            f"{what} eye-readable form must have {body_length} characters plus a check character, "
            f"got {len(compact)} ({text!r})",
        )
    return compact[:-1], compact[-1]


# --------------------------------------------------------------------------------------- COI

COI_PREFIX: Final = "&/"
COI_VALUE_LENGTH: Final = 15


class Coi(msgspec.Struct, frozen=True, tag_field="type", tag="coi"):
    """Chain-of-identity identifier (ISBT 128 data structure 040)."""

    fin: str
    year: str
    sequence: str

    def __post_init__(self) -> None:
        _check_fin("coi.fin", self.fin)
        _check_year("coi.year", self.year)
        if not _COI_SEQUENCE.fullmatch(self.sequence):
            if _COI_SEQUENCE.fullmatch(self.sequence.upper()):
                raise IdentifierError(
                    "coi.sequence", f"COI sequence must be upper-case, got {self.sequence!r}"
                )
            raise IdentifierError(
                "coi.sequence", f"COI sequence must be 6 characters A-Z or 0-9, got {self.sequence!r}"
            )

    @property
    def value(self) -> str:
        """The 15 characters after ``&/``: ``CH`` + FIN + yy + sequence."""
        return f"CH{self.fin}{self.year}{self.sequence}"

    @property
    def barcode(self) -> str:
        return COI_PREFIX + self.value

    @property
    def check(self) -> str:
        """MOD 37-2 over the whole 15-character value."""
        return mod37_2(self.value)

    @property
    def eye_readable_body(self) -> str:
        return f"CH {self.fin} {self.year} {self.sequence}"

    @property
    def eye_readable(self) -> str:
        return f"{self.eye_readable_body} [{self.check}]"

    @classmethod
    def from_value(cls, value: str) -> "Coi":
        if len(value) != COI_VALUE_LENGTH:
            raise IdentifierError(
                "coi", f"COI must be {COI_VALUE_LENGTH} characters after '&/', got {len(value)} ({value!r})"
            )
        if not value.startswith("CH"):
            raise IdentifierError("coi", f"COI must start with 'CH', got {value[:2]!r} in {value!r}")
        return cls(fin=value[2:7], year=value[7:9], sequence=value[9:15])

    @classmethod
    def from_barcode(cls, content: str) -> "Coi":
        if not content.startswith(COI_PREFIX):
            raise IdentifierError("coi", f"COI barcode content must start with '&/', got {content[:2]!r}")
        return cls.from_value(content[len(COI_PREFIX) :])

    @classmethod
    def from_eye_readable(cls, text: str) -> "Coi":
        """Parse ``CH G1234 26 A1B2C3 [K]`` (spacing and brackets optional); the check must match."""
        body, check = _split_eye_readable("coi.check", "COI", text, COI_VALUE_LENGTH)
        coi = cls.from_value(body)
        _check_against("coi.check", "COI", body, check)
        return coi


def parse_coi(text: str) -> Coi:
    """A COI from barcode content (``&/...``), the bare 15-character value, or the eye-readable form."""
    stripped = text.strip()
    if stripped.startswith(COI_PREFIX):
        return Coi.from_barcode(stripped)
    if len(stripped) == COI_VALUE_LENGTH and " " not in stripped:
        return Coi.from_value(stripped)
    return Coi.from_eye_readable(stripped)


# --------------------------------------------------------------------------------------- DIN

DIN_PREFIX: Final = "="
DIN_LENGTH: Final = 13
DIN_BARCODE_LENGTH: Final = 1 + DIN_LENGTH + 2
FLAGS_UNUSED: Final = "00"
_CHECK_FLAGS_BASE: Final = 60


def _flags_for_check(check: str) -> str:
    return str(_CHECK_FLAGS_BASE + mod37_value(check))


class Din(msgspec.Struct, frozen=True, tag_field="type", tag="din"):
    """Donation identification number (ISBT 128 data structure 001) with its flag characters."""

    fin: str
    year: str
    sequence: str
    flags: str

    def __post_init__(self) -> None:
        _check_fin("din.fin", self.fin)
        _check_year("din.year", self.year)
        if not _DIN_SEQUENCE.fullmatch(self.sequence):
            raise IdentifierError("din.sequence", f"DIN sequence must be 6 digits, got {self.sequence!r}")
        if not re.fullmatch(r"[0-9]{2}", self.flags):
            raise IdentifierError("din.flags", f"DIN flags must be 2 digits, got {self.flags!r}")
        if self.flags == FLAGS_UNUSED:
            return
        flag_value = int(self.flags)
        if not _CHECK_FLAGS_BASE <= flag_value <= _CHECK_FLAGS_BASE + 36:
            raise IdentifierError(
                "din.flags",
                f"DIN flags {self.flags} are not supported: use 00 (unused) or 60-96 (60 + check)",
            )
        implied = MOD37_CHARS[flag_value - _CHECK_FLAGS_BASE]
        if implied != self.check:
            raise IdentifierError(
                "din.flags",
                f"DIN check character is {self.check!r} but flags {self.flags} imply {implied!r}",
            )

    @classmethod
    def build(cls, fin: str, year: str, sequence: str, *, check_flags: bool = True) -> "Din":
        """A DIN whose flags carry its check character (60 + check value), or ``00`` if not wanted."""
        unflagged = cls(fin=fin, year=year, sequence=sequence, flags=FLAGS_UNUSED)
        if not check_flags:
            return unflagged
        return msgspec.structs.replace(unflagged, flags=_flags_for_check(unflagged.check))

    @property
    def value(self) -> str:
        """The 13 DIN characters (flags are not part of the DIN)."""
        return f"{self.fin}{self.year}{self.sequence}"

    @property
    def barcode(self) -> str:
        return DIN_PREFIX + self.value + self.flags

    @property
    def check(self) -> str:
        return mod37_2(self.value)

    @property
    def eye_readable_body(self) -> str:
        return f"{self.fin} {self.year} {self.sequence}"

    @property
    def eye_readable(self) -> str:
        return f"{self.eye_readable_body} [{self.check}]"

    @classmethod
    def from_barcode(cls, content: str) -> "Din":
        if not content.startswith(DIN_PREFIX):
            raise IdentifierError("din", f"DIN barcode content must start with '=', got {content[:1]!r}")
        if len(content) != DIN_BARCODE_LENGTH:
            raise IdentifierError(
                "din",
                f"DIN barcode content must be {DIN_BARCODE_LENGTH} characters ('=' + 13 + 2 flags), "
                f"got {len(content)} ({content!r})",
            )
        body = content[1:]
        return cls(fin=body[0:5], year=body[5:7], sequence=body[7:13], flags=body[13:15])

    @classmethod
    def from_eye_readable(cls, text: str) -> "Din":
        """Parse ``G1234 17 654321 [A]``; the check must match. Flags are set to carry the check."""
        body, check = _split_eye_readable("din.check", "DIN", text, DIN_LENGTH)
        din = cls.build(body[0:5], body[5:7], body[7:13])
        _check_against("din.check", "DIN", body, check)
        return din


def parse_din(text: str) -> Din:
    """A DIN from barcode content (``=...``) or the eye-readable form with its check character."""
    stripped = text.strip()
    if stripped.startswith(DIN_PREFIX):
        return Din.from_barcode(stripped)
    return Din.from_eye_readable(stripped)


# --------------------------------------------------------------------------------------- unit ids


class UnitKind(StrEnum):
    """What a unit (bag or vial) holds."""

    APHERESIS = "APH"  # starting material collected at the hospital
    FINAL_PRODUCT = "PRC"  # a final product bag from manufacturing
    SAMPLE = "SMP"  # a retained or QC sample


_UNIT_ID = re.compile(r"(?P<coi>[^-]*)-(?P<kind>[^-]*)-(?P<number>[^-]*)")


class UnitId(msgspec.Struct, frozen=True, tag_field="type", tag="unit"):
    """A bag or vial: ``<COI value>-<KIND>-<NN>``, e.g. ``CHG123426A1B2C3-PRC-01``."""

    coi: Coi
    kind: UnitKind
    number: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 99:
            raise IdentifierError("unit.number", f"unit number must be 01-99, got {self.number}")

    @property
    def text(self) -> str:
        return f"{self.coi.value}-{self.kind.value}-{self.number:02d}"

    @property
    def barcode(self) -> str:
        return self.text

    @property
    def eye_readable(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str) -> "UnitId":
        match = _UNIT_ID.fullmatch(text.strip())
        if match is None:
            raise IdentifierError(
                "unit", f"unit id must look like <COI>-<KIND>-<NN>, e.g. CHG123426A1B2C3-PRC-01, got {text!r}"
            )
        coi = Coi.from_value(match["coi"])
        kinds = {kind.value: kind for kind in UnitKind}
        kind = kinds.get(match["kind"])
        if kind is None:
            raise IdentifierError(
                "unit.kind", f"unit kind {match['kind']!r} is not one of {', '.join(kinds)}"
            )
        if not re.fullmatch(r"[0-9]{2}", match["number"]):
            raise IdentifierError(
                "unit.number", f"unit number must be 2 digits 01-99, got {match['number']!r}"
            )
        return cls(coi=coi, kind=kind, number=int(match["number"]))
