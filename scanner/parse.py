"""Decoded text -> typed identifier, a rejected look-alike with its reason, or a foreign code.

``celltrail_shared.identifiers.parse_identifier`` is the one authority on formats. On top of it:

* GS1 data (a GS1 symbology identifier, or a parsed SSCC/GIAI/GLN) is cross-checked with ``biip``, an
  independent GS1 parser; a disagreement rejects the scan rather than trusting either side.
* A text that is not a Celltrail identifier at all (a product EAN, an ISBT 128 product code, a URL on a
  box, GS1 data without an SSCC, GIAI or GLN such as a drug's GTIN Data Matrix) is *foreign*: shown and
  ignored, not a STOP. A text that looks like one of ours but fails its own
  rules (wrong check character, bad length, unknown unit kind) is *rejected*: that is a damaged or
  counterfeit label and the operator must stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from celltrail_shared.identifiers import (
    Coi,
    Din,
    Giai,
    Gln,
    Identifier,
    IdentifierError,
    LoggerId,
    ShipmentId,
    Sscc,
    UnitId,
    parse_identifier,
)
from scanner.decode import Detection


@dataclass(frozen=True, slots=True)
class Parsed:
    detection: Detection
    identifier: Identifier

    @property
    def key(self) -> str:
        return identity_key(self.identifier)


@dataclass(frozen=True, slots=True)
class Rejected:
    detection: Detection
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Foreign:
    detection: Detection
    reason: str


Interpretation = Parsed | Rejected | Foreign


def kind_of(identifier: Identifier) -> str:
    match identifier:
        case Coi():
            return "coi"
        case Din():
            return "din"
        case UnitId():
            return "unit"
        case Sscc():
            return "sscc"
        case Giai():
            return "giai"
        case Gln():
            return "gln"
        case ShipmentId():
            return "shipment"
        case LoggerId():
            return "logger"


def display_text(identifier: Identifier) -> str:
    """What the operator reads on the label for this identifier."""
    match identifier:
        case Coi() | Din():
            return identifier.eye_readable
        case UnitId() | ShipmentId() | LoggerId():
            return identifier.text
        case Sscc() | Giai() | Gln():
            return identifier.element_string


def identity_key(identifier: Identifier) -> str:
    """One key per thing, whichever symbol carried it: the Code 128 and the QR code of the same shipment,
    or a DIN with and without check flags, are one key (``shipment:SHP-2026-000123``)."""
    match identifier:
        case Coi() | Din():
            value = identifier.value
        case UnitId() | ShipmentId() | LoggerId():
            value = identifier.text
        case Sscc() | Gln():
            value = identifier.digits
        case Giai():
            value = identifier.value
    return f"{kind_of(identifier)}:{value}"


def _biip_problem(text: str, identifier: Identifier | None) -> str | None:
    """biip's objection to GS1 ``text``, or None when it agrees with ``identifier``."""
    import biip

    result = biip.parse(text)
    message = result.gs1_message
    if message is None:
        return f"GS1 data rejected by biip: {result.gs1_message_error or 'not a GS1 message'}"
    for element in message.element_strings:
        for error in (element.sscc_error, element.gln_error, element.gtin_error):
            if error:
                return f"GS1 data rejected by biip: {error}"
    if isinstance(identifier, Sscc) and (result.sscc is None or result.sscc.value != identifier.digits):
        return f"biip reads SSCC {getattr(result.sscc, 'value', None)!r}, parser {identifier.digits!r}"
    return None


def interpret(detection: Detection) -> Interpretation:
    """What ``detection``'s text means for Celltrail."""
    text = detection.text
    try:
        identifier = parse_identifier(text)
    except IdentifierError as exc:
        # parse_identifier uses the field "identifier" only when no Celltrail, ISBT 128 identifier or GS1
        # key format matched at all; every other field names the rule a look-alike broke.
        if exc.field == "identifier":
            return Foreign(detection, exc.reason)
        foreign_gs1 = _foreign_gs1(text)
        if foreign_gs1 is not None:
            return Foreign(detection, foreign_gs1)
        return Rejected(detection, exc.field, exc.reason)
    if detection.gs1 or isinstance(identifier, Sscc | Giai | Gln):
        problem = _biip_problem(text, identifier) if _is_raw_gs1(text) else None
        if problem is not None:
            return Rejected(detection, "gs1", problem)
    return Parsed(detection, identifier)


# The GS1 keys Celltrail prints or records: SSCC, GIAI, GLN. GS1 data carrying none of them (a drug's
# GTIN with its lot and expiry, a plain (01) on a box) is someone else's code, not a damaged one of ours.
OWN_GS1_AIS = frozenset({"00", "8004", "414"})


def _foreign_gs1(text: str) -> str | None:
    """Why GS1 ``text`` is someone else's code, or None when it is not GS1 data or carries one of
    Celltrail's keys (then a failed check is a damaged label of ours, and rejected)."""
    import biip

    message = biip.parse(text).gs1_message
    if message is None or not message.element_strings:
        return None
    ais = [element.ai.ai for element in message.element_strings]
    if OWN_GS1_AIS.intersection(ais):
        return None
    listed = ", ".join(f"({ai})" for ai in ais)
    return f"GS1 data {listed} carries no SSCC, GIAI or GLN: not a Celltrail code"


def _is_raw_gs1(text: str) -> bool:
    """biip reads raw element strings (optionally after a symbology identifier); the bracketed form and
    Celltrail QR payloads are checked by the domain parser alone."""
    body = text[3:] if text.startswith("]") else text
    return bool(body) and (body[0].isdigit() or body[0] == "\x1d")
