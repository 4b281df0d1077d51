"""Recognise any identifier from scanned or keyed text."""

import re
from typing import Final

from celltrail_shared.identifiers.celltrail import LoggerId, ShipmentId
from celltrail_shared.identifiers.errors import IdentifierError
from celltrail_shared.identifiers.gs1 import GS1_SYMBOLOGY_IDS, gs1_identifier, looks_gs1, parse_gs1
from celltrail_shared.identifiers.isbt import COI_PREFIX, DIN_PREFIX, Coi, Din, UnitId, parse_coi
from celltrail_shared.identifiers.kinds import Identifier
from celltrail_shared.identifiers.qr import decode_qr_payload

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
    if re.match(r"\][A-Za-z][0-9]", stripped) and not stripped.startswith(GS1_SYMBOLOGY_IDS):
        stripped = stripped[3:]
    if re.match(r"CT[0-9]+:", stripped):
        return decode_qr_payload(stripped)
    if stripped[0] in "=&":
        return _parse_isbt(stripped)
    if re.fullmatch(r"[0-9]{18}", stripped):
        raise IdentifierError(
            "identifier", "18 digits without an AI: write an SSCC as (00) and its 18 digits"
        )
    if looks_gs1(stripped):
        return gs1_identifier(parse_gs1(stripped))
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
