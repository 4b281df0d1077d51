"""Build, parse and validate every identifier Celltrail prints or scans.

This module is the single authority on identifier formats: the scanner, the labels and the backend all
go through it, so a format rule lives in exactly one place. It is pure (no I/O) and every type is a
frozen msgspec Struct that validates itself on construction and on decode.

Identifiers and their text forms
--------------------------------
ISBT 128 (content exactly as the standard writes it in the barcode):

* COI, data structure 040: barcode ``&/`` + ``CH`` + FIN(5) + yy(2) + sequence(6, ``A-Z0-9``), e.g.
  ``&/CHG123426A1B2C3``. The *value* is the 15 characters after ``&/``. The COI check character is
  ISO/IEC 7064 MOD 37-2 computed over the whole 15-character value (``CH`` included), so it protects
  exactly the characters a person reads and keys in. It is printed, boxed, in the eye-readable form
  ``CH G1234 26 A1B2C3 [K]`` and is never part of the barcode content.
* DIN, data structure 001: barcode ``=`` + FIN(5) + yy(2) + sequence(6 digits) + flags(2), e.g.
  ``=G12341765432170``. The check character is MOD 37-2 over the 13 DIN characters. Flags are ``00``
  (unused) or ``60``-``96`` ("type 3" flags: 60 + the check value). Eye-readable:
  ``G1234 17 654321 [A]``.
* FIN (both): first character ``A-N``, ``P-Z`` or ``1-9`` (no letter O, no zero, so it cannot be
  confused with ``0`` and cannot collide with the other ``=`` data identifiers such as ``=<`` or
  ``=%``), then four digits.

Celltrail:

* Unit id: ``<COI value>-<KIND>-<NN>``, e.g. ``CHG123426A1B2C3-PRC-01``; KIND is one of
  :class:`UnitKind`; NN is 01-99.
* Shipment id: ``SHP-YYYY-NNNNNN`` (year 2000-2099, sequence 000001-999999), e.g. ``SHP-2026-000123``.
* Logger id: ``LGR-`` + 1 to 20 characters ``A-Z0-9``, e.g. ``LGR-T4X9002``.
* QR payload: ``CT1:<KIND>:<ID>`` (see :func:`encode_qr_payload`). Only characters of the QR
  alphanumeric set are used for Celltrail and ISBT kinds, which keeps the symbol small.

GS1 (element strings, AI in parentheses for people, raw with FNC1 semantics for barcodes):

* SSCC, AI 00: 18 digits = extension digit + GS1 Company Prefix + serial reference + check digit.
* GIAI, AI 8004: GS1 Company Prefix + individual asset reference, at most 30 characters of GS1 set 82.
* GLN, AI 414: 13 digits with check digit.

In a raw element string, AI 00 and 414 have a predefined length and need no separator; AI 8004 is
variable length and is terminated by FNC1 (transmitted as ASCII GS, ``\\x1d``) when another element
follows it.
"""

import re
from enum import StrEnum
from typing import Final, TypeAlias

import msgspec

__all__ = [
    "GS1_SEPARATOR",
    "QR_PAYLOAD_VERSION",
    "Coi",
    "Din",
    "Giai",
    "Gln",
    "Gs1Element",
    "Identifier",
    "IdentifierError",
    "LoggerId",
    "ShipmentId",
    "Sscc",
    "UnitId",
    "UnitKind",
    "decode_qr_payload",
    "encode_qr_payload",
    "gs1_check_digit",
    "gs1_raw",
    "mod37_2",
    "mod37_value",
    "parse_coi",
    "parse_din",
    "parse_gs1",
    "parse_identifier",
]


class IdentifierError(ValueError):
    """An identifier was rejected; ``field`` names the part at fault, ``reason`` says what to fix."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type["IdentifierError"], tuple[str, str]]:
        return (type(self), (self.field, self.reason))


# --------------------------------------------------------------------------------------- check characters

_MOD37_CHARS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_MOD37_VALUES: Final = {char: value for value, char in enumerate(_MOD37_CHARS)}
_DIGITS = re.compile(r"[0-9]+")


def mod37_2(chars: str) -> str:
    """ISO/IEC 7064 MOD 37-2 check character over ``chars`` (``0-9``, ``A-Z``); one of ``0-9A-Z*``."""
    if not chars:
        raise IdentifierError("check", "cannot compute a MOD 37-2 check character over an empty string")
    total = 0
    for position, char in enumerate(chars, start=1):
        value = _MOD37_VALUES.get(char, 36)
        if value == 36:
            raise IdentifierError(
                "check", f"character {char!r} at position {position} is not 0-9 or A-Z (MOD 37-2 input)"
            )
        total = ((total + value) * 2) % 37
    return _MOD37_CHARS[(38 - total) % 37]


def mod37_value(check: str) -> int:
    """Numeric value (0-36) of a MOD 37-2 check character."""
    value = _MOD37_VALUES.get(check)
    if value is None or len(check) != 1:
        raise IdentifierError("check", f"{check!r} is not a MOD 37-2 check character (0-9, A-Z or *)")
    return value


def gs1_check_digit(digits: str) -> int:
    """GS1 check digit over the data digits: weights 3,1,3,1... from the rightmost digit."""
    if not _DIGITS.fullmatch(digits):
        raise IdentifierError("check", f"GS1 check digit needs digits 0-9 only, got {digits!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


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
        implied = _MOD37_CHARS[flag_value - _CHECK_FLAGS_BASE]
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


# --------------------------------------------------------------------------------------- GS1 keys

GS1_SEPARATOR: Final = "\x1d"  # FNC1 as transmitted between elements (ASCII GS)
# GS1 AI encodable character set 82.
_CSET82 = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+")


def _check_digits_with_check(field: str, what: str, digits: str, length: int) -> None:
    if not re.fullmatch(rf"[0-9]{{{length}}}", digits):
        raise IdentifierError(field, f"{what} must be {length} digits, got {len(digits)} ({digits!r})")
    expected = gs1_check_digit(digits[:-1])
    if int(digits[-1]) != expected:
        raise IdentifierError(
            field, f"{what} check digit is {digits[-1]} but the first {length - 1} digits imply {expected}"
        )


def _check_company_prefix(field: str, prefix: str) -> None:
    if not re.fullmatch(r"[0-9]{4,12}", prefix):
        raise IdentifierError(field, f"GS1 Company Prefix must be 4-12 digits, got {prefix!r}")


class Sscc(msgspec.Struct, frozen=True, tag_field="type", tag="sscc"):
    """Serial Shipping Container Code (AI 00): 18 digits including the check digit."""

    digits: str

    def __post_init__(self) -> None:
        _check_digits_with_check("sscc", "SSCC", self.digits, 18)

    @classmethod
    def build(cls, company_prefix: str, serial_reference: str, extension: int = 0) -> "Sscc":
        _check_company_prefix("sscc.company_prefix", company_prefix)
        if not 0 <= extension <= 9:
            raise IdentifierError("sscc.extension", f"SSCC extension digit must be 0-9, got {extension}")
        if not _DIGITS.fullmatch(serial_reference):
            raise IdentifierError(
                "sscc.serial_reference", f"serial reference must be digits, got {serial_reference!r}"
            )
        if len(company_prefix) + len(serial_reference) != 16:
            raise IdentifierError(
                "sscc.serial_reference",
                f"company prefix ({len(company_prefix)} digits) and serial reference "
                f"({len(serial_reference)} digits) must total 16 digits",
            )
        data = f"{extension}{company_prefix}{serial_reference}"
        return cls(digits=data + str(gs1_check_digit(data)))

    @property
    def extension(self) -> int:
        return int(self.digits[0])

    @property
    def element_string(self) -> str:
        return f"(00){self.digits}"

    @property
    def raw(self) -> str:
        """AI + data as carried in GS1-128 / GS1 Data Matrix after the leading FNC1."""
        return f"00{self.digits}"

    @property
    def barcode(self) -> str:
        return self.raw

    @property
    def eye_readable(self) -> str:
        return self.element_string


class Giai(msgspec.Struct, frozen=True, tag_field="type", tag="giai"):
    """Global Individual Asset Identifier (AI 8004): company prefix + asset reference, <= 30 characters."""

    value: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.value) <= 30:
            raise IdentifierError("giai", f"GIAI must be 1-30 characters, got {len(self.value)}")
        if not _CSET82.fullmatch(self.value):
            raise IdentifierError("giai", f"GIAI may only use GS1 character set 82, got {self.value!r}")
        if not re.match(r"[0-9]{4}", self.value):
            raise IdentifierError(
                "giai", f"GIAI must begin with a GS1 Company Prefix (digits), got {self.value!r}"
            )

    @classmethod
    def build(cls, company_prefix: str, asset_reference: str) -> "Giai":
        _check_company_prefix("giai.company_prefix", company_prefix)
        if not asset_reference:
            raise IdentifierError("giai.asset_reference", "GIAI asset reference must not be empty")
        return cls(value=company_prefix + asset_reference)

    @property
    def element_string(self) -> str:
        return f"(8004){self.value}"

    @property
    def raw(self) -> str:
        """AI + data; append :data:`GS1_SEPARATOR` before any element that follows."""
        return f"8004{self.value}"

    @property
    def barcode(self) -> str:
        return self.raw

    @property
    def eye_readable(self) -> str:
        return self.element_string


class Gln(msgspec.Struct, frozen=True, tag_field="type", tag="gln"):
    """Global Location Number (AI 414): 13 digits including the check digit."""

    digits: str

    def __post_init__(self) -> None:
        _check_digits_with_check("gln", "GLN", self.digits, 13)

    @classmethod
    def build(cls, data: str) -> "Gln":
        """A GLN from its 12 data digits (company prefix + location reference)."""
        if not re.fullmatch(r"[0-9]{12}", data):
            raise IdentifierError("gln", f"GLN data must be 12 digits, got {data!r}")
        return cls(digits=data + str(gs1_check_digit(data)))

    @property
    def element_string(self) -> str:
        return f"(414){self.digits}"

    @property
    def raw(self) -> str:
        return f"414{self.digits}"

    @property
    def barcode(self) -> str:
        return self.raw

    @property
    def eye_readable(self) -> str:
        return self.element_string


class Gs1Element(msgspec.Struct, frozen=True):
    """One element of a GS1 element string."""

    ai: str
    data: str


# AI -> (fixed length, or None for variable) and maximum data length. Only AIs Celltrail meets.
_GS1_AIS: Final[dict[str, tuple[bool, int]]] = {
    "00": (True, 18),
    "01": (True, 14),
    "10": (False, 20),
    "11": (True, 6),
    "13": (True, 6),
    "15": (True, 6),
    "17": (True, 6),
    "21": (False, 20),
    "414": (True, 13),
    "420": (False, 20),
    "8004": (False, 30),
}
# Symbology identifiers that announce GS1 data (ISO/IEC 15424).
_GS1_SYMBOLOGY_IDS: Final = ("]C1", "]d2", "]Q3", "]e0", "]J1")


def _parse_gs1_bracketed(text: str) -> list[Gs1Element]:
    elements: list[Gs1Element] = []
    pos = 0
    for match in re.finditer(r"\(([0-9]{2,4})\)([^(]*)", text):
        if match.start() != pos:
            raise IdentifierError(
                "gs1", f"unexpected text {text[pos : match.start()]!r} in GS1 element string"
            )
        elements.append(Gs1Element(ai=match[1], data=match[2]))
        pos = match.end()
    if pos != len(text) or not elements:
        raise IdentifierError("gs1", f"GS1 element string must be (AI)data..., got {text!r}")
    return elements


def _parse_gs1_raw(text: str) -> list[Gs1Element]:
    elements: list[Gs1Element] = []
    pos = 0
    while pos < len(text):
        if text[pos] == GS1_SEPARATOR:
            pos += 1
            continue
        ai = next((text[pos : pos + n] for n in (2, 3, 4) if text[pos : pos + n] in _GS1_AIS), None)
        if ai is None:
            raise IdentifierError("gs1", f"GS1 AI at {text[pos : pos + 4]!r} is not one Celltrail reads")
        fixed, length = _GS1_AIS[ai]
        start = pos + len(ai)
        if fixed:
            end = start + length
        else:
            separator = text.find(GS1_SEPARATOR, start)
            end = len(text) if separator < 0 else separator
        elements.append(Gs1Element(ai=ai, data=text[start:end]))
        pos = end
    if not elements:
        raise IdentifierError("gs1", "GS1 data is empty")
    return elements


def parse_gs1(text: str) -> list[Gs1Element]:
    """Elements of a GS1 element string: bracketed ``(00)...`` or raw (optional symbology identifier
    such as ``]d2``, optional leading FNC1, GS between a variable-length element and the next)."""
    body = text
    for prefix in _GS1_SYMBOLOGY_IDS:
        if body.startswith(prefix):
            body = body[len(prefix) :]
            break
    elements = _parse_gs1_bracketed(body) if body.startswith("(") else _parse_gs1_raw(body)
    for element in elements:
        spec = _GS1_AIS.get(element.ai)
        if spec is None:
            raise IdentifierError("gs1", f"GS1 AI ({element.ai}) is not one Celltrail reads")
        fixed, length = spec
        if (fixed and len(element.data) != length) or not 1 <= len(element.data) <= length:
            size = f"exactly {length}" if fixed else f"1-{length}"
            raise IdentifierError(
                f"gs1.{element.ai}", f"AI ({element.ai}) needs {size} characters, got {len(element.data)}"
            )
    return elements


def gs1_raw(elements: list[Gs1Element]) -> str:
    """Elements joined as a reader transmits them: GS only after a variable-length element."""
    parts: list[str] = []
    for index, element in enumerate(elements):
        parts.append(element.ai + element.data)
        fixed, _ = _GS1_AIS[element.ai]
        if not fixed and index < len(elements) - 1:
            parts.append(GS1_SEPARATOR)
    return "".join(parts)


def _gs1_identifier(elements: list[Gs1Element]) -> "Sscc | Giai | Gln":
    for element in elements:
        if element.ai == "00":
            return Sscc(digits=element.data)
        if element.ai == "8004":
            return Giai(value=element.data)
        if element.ai == "414":
            return Gln(digits=element.data)
    ais = ", ".join(f"({e.ai})" for e in elements)
    raise IdentifierError("gs1", f"GS1 data {ais} carries no SSCC (00), GIAI (8004) or GLN (414)")


# --------------------------------------------------------------------------------------- Celltrail ids

_SHIPMENT_ID = re.compile(r"SHP-(?P<year>[0-9]{4})-(?P<sequence>[0-9]{6})")
_LOGGER_ID = re.compile(r"LGR-(?P<serial>[A-Z0-9]{1,20})")


class ShipmentId(msgspec.Struct, frozen=True, tag_field="type", tag="shipment"):
    """A Celltrail shipment: ``SHP-YYYY-NNNNNN``."""

    year: int
    sequence: int

    def __post_init__(self) -> None:
        if not 2000 <= self.year <= 2099:
            raise IdentifierError("shipment.year", f"shipment year must be 2000-2099, got {self.year}")
        if not 1 <= self.sequence <= 999_999:
            raise IdentifierError(
                "shipment.sequence", f"shipment sequence must be 000001-999999, got {self.sequence}"
            )

    @property
    def text(self) -> str:
        return f"SHP-{self.year:04d}-{self.sequence:06d}"

    @property
    def barcode(self) -> str:
        return self.text

    @property
    def eye_readable(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str) -> "ShipmentId":
        match = _SHIPMENT_ID.fullmatch(text.strip())
        if match is None:
            raise IdentifierError("shipment", f"shipment id must look like SHP-2026-000123, got {text!r}")
        return cls(year=int(match["year"]), sequence=int(match["sequence"]))


class LoggerId(msgspec.Struct, frozen=True, tag_field="type", tag="logger"):
    """A temperature logger: ``LGR-`` + 1-20 characters A-Z, 0-9."""

    serial: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z0-9]{1,20}", self.serial):
            raise IdentifierError(
                "logger.serial", f"logger serial must be 1-20 characters A-Z or 0-9, got {self.serial!r}"
            )

    @property
    def text(self) -> str:
        return f"LGR-{self.serial}"

    @property
    def barcode(self) -> str:
        return self.text

    @property
    def eye_readable(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str) -> "LoggerId":
        match = _LOGGER_ID.fullmatch(text.strip())
        if match is None:
            raise IdentifierError(
                "logger", f"logger id must be LGR- and 1-20 characters A-Z, 0-9, got {text!r}"
            )
        return cls(serial=match["serial"])


Identifier: TypeAlias = Coi | Din | UnitId | Sscc | Giai | Gln | ShipmentId | LoggerId


# --------------------------------------------------------------------------------------- QR payload

QR_PAYLOAD_VERSION: Final = "CT1"


def _qr_kind_and_id(identifier: Identifier) -> tuple[str, str]:
    match identifier:
        case Coi():
            return "COI", identifier.value
        case Din():
            return "DIN", identifier.value + identifier.flags
        case UnitId():
            return "UNIT", identifier.text
        case Sscc():
            return "SSCC", identifier.digits
        case Giai():
            return "GIAI", identifier.value
        case Gln():
            return "GLN", identifier.digits
        case ShipmentId():
            return "SHP", identifier.text
        case LoggerId():
            return "LGR", identifier.text


def encode_qr_payload(identifier: Identifier) -> str:
    """``CT1:<KIND>:<ID>``, KIND one of COI, DIN (13 characters + flags), UNIT, SSCC, GIAI, GLN, SHP, LGR."""
    kind, text = _qr_kind_and_id(identifier)
    return f"{QR_PAYLOAD_VERSION}:{kind}:{text}"


def decode_qr_payload(payload: str) -> Identifier:
    """The identifier inside a Celltrail QR payload; the inner id is validated like any scan."""
    parts = payload.split(":", 2)
    if len(parts) != 3:
        raise IdentifierError("qr", f"Celltrail QR payload must be CT1:<KIND>:<ID>, got {payload!r}")
    version, kind, text = parts
    if version != QR_PAYLOAD_VERSION:
        raise IdentifierError("qr.version", f"QR payload version {version!r} is not supported (expected CT1)")
    match kind:
        case "COI":
            return Coi.from_value(text)
        case "DIN":
            return Din.from_barcode(DIN_PREFIX + text)
        case "UNIT":
            return UnitId.parse(text)
        case "SSCC":
            return Sscc(digits=text)
        case "GIAI":
            return Giai(value=text)
        case "GLN":
            return Gln(digits=text)
        case "SHP":
            return ShipmentId.parse(text)
        case "LGR":
            return LoggerId.parse(text)
    raise IdentifierError("qr.kind", f"QR payload kind {kind!r} is unknown")


# --------------------------------------------------------------------------------------- dispatch

# Other ISBT 128 data identifiers, named so a scan of the wrong barcode gets a useful message.
_OTHER_ISBT: Final = {
    "=<": "product code",
    "=>": "expiration date",
    "=%": "blood groups",
    "='": "staff member identifier",
    "&>": "expiration date and time",
    "&*": "collection date and time",
    "&(": "special testing",
}


def _parse_isbt(text: str) -> Identifier:
    if text.startswith(COI_PREFIX):
        return Coi.from_barcode(text)
    if text.startswith(DIN_PREFIX) and len(text) > 1 and re.fullmatch(r"[A-NP-Z1-9]", text[1]):
        return Din.from_barcode(text)
    name = _OTHER_ISBT.get(text[:2])
    if name is not None:
        raise IdentifierError("identifier", f"{text[:2]!r} is the ISBT 128 {name}, not an identifier")
    raise IdentifierError("identifier", f"ISBT 128 data identifier {text[:2]!r} is not a COI (&/) or DIN (=)")


def _looks_gs1(text: str) -> bool:
    return (
        text.startswith((*_GS1_SYMBOLOGY_IDS, "(", GS1_SEPARATOR))
        or (_DIGITS.fullmatch(text.replace(GS1_SEPARATOR, "")) is not None and len(text) > 13)
        or (text.startswith("8004") and len(text) > 4 and not re.search(r"\s", text))
    )


def parse_identifier(text: str) -> Identifier:
    """Recognise any identifier Celltrail prints or scans.

    Accepts: Celltrail QR payloads (``CT1:...``); ISBT 128 barcode contents (``&/`` COI, ``=`` DIN);
    GS1 element strings (bracketed or raw, with or without a symbology identifier) carrying an SSCC,
    GIAI or GLN; unit ids; shipment ids; logger ids; a bare 15-character COI value; the eye-readable
    COI and DIN with their check characters. A leading non-GS1 symbology identifier (e.g. ``]C0``) is
    ignored. Raises :class:`IdentifierError` saying what is wrong otherwise.
    """
    stripped = text.strip(" \t\r\n")
    if not stripped:
        raise IdentifierError("identifier", "nothing to parse: the scan or entry is empty")
    if re.match(r"\][A-Za-z][0-9]", stripped) and not stripped.startswith(_GS1_SYMBOLOGY_IDS):
        stripped = stripped[3:]
    if re.match(r"CT[0-9]+:", stripped):
        return decode_qr_payload(stripped)
    if stripped[0] in "=&":
        return _parse_isbt(stripped)
    if re.fullmatch(r"[0-9]{18}", stripped):
        raise IdentifierError(
            "identifier", "18 digits without an AI: write an SSCC as (00) and its 18 digits"
        )
    if _looks_gs1(stripped):
        return _gs1_identifier(parse_gs1(stripped))
    if stripped.startswith("SHP-"):
        return ShipmentId.parse(stripped)
    if stripped.startswith("LGR-"):
        return LoggerId.parse(stripped)
    if stripped.upper().startswith("CH"):
        if "-" in stripped:
            return UnitId.parse(stripped)
        return parse_coi(stripped)
    if re.fullmatch(r"[A-NP-Z1-9][0-9]{4}\s*[0-9]{2}\s*[0-9]{6}\s*\[?.\]?", stripped.upper()):
        return Din.from_eye_readable(stripped)
    raise IdentifierError(
        "identifier",
        f"{stripped[:40]!r} is not a COI, DIN, unit, SSCC, GIAI, GLN, shipment or logger id",
    )
