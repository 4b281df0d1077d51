"""GS1 keys (SSCC, GIAI, GLN) and GS1 element strings, bracketed or raw."""

import re
from typing import Final

import msgspec

from celltrail_shared.identifiers.checks import DIGITS, gs1_check_digit
from celltrail_shared.identifiers.errors import IdentifierError

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
        if not DIGITS.fullmatch(serial_reference):
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
GS1_SYMBOLOGY_IDS: Final = ("]C1", "]d2", "]Q3", "]e0", "]J1")


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
    for prefix in GS1_SYMBOLOGY_IDS:
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


def gs1_identifier(elements: list[Gs1Element]) -> "Sscc | Giai | Gln":
    """The first GS1 key Celltrail tracks (SSCC, GIAI or GLN) among parsed elements."""
    for element in elements:
        if element.ai == "00":
            return Sscc(digits=element.data)
        if element.ai == "8004":
            return Giai(value=element.data)
        if element.ai == "414":
            return Gln(digits=element.data)
    ais = ", ".join(f"({e.ai})" for e in elements)
    raise IdentifierError("gs1", f"GS1 data {ais} carries no SSCC (00), GIAI (8004) or GLN (414)")


def looks_gs1(text: str) -> bool:
    """Whether scanned text should be read as a GS1 element string rather than another format."""
    return (
        text.startswith((*GS1_SYMBOLOGY_IDS, "(", GS1_SEPARATOR))
        or (DIGITS.fullmatch(text.replace(GS1_SEPARATOR, "")) is not None and len(text) > 13)
        or (text.startswith("8004") and len(text) > 4 and not re.search(r"\s", text))
    )
