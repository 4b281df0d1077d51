"""Build, parse and validate every identifier Celltrail prints or scans.

This package is the single authority on identifier formats: the scanner, the labels and the backend all
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

from celltrail_shared.identifiers.celltrail import LoggerId, ShipmentId
from celltrail_shared.identifiers.checks import gs1_check_digit, mod37_2, mod37_value
from celltrail_shared.identifiers.errors import IdentifierError
from celltrail_shared.identifiers.gs1 import (
    GS1_SEPARATOR,
    Giai,
    Gln,
    Gs1Element,
    Sscc,
    gs1_raw,
    parse_gs1,
)
from celltrail_shared.identifiers.isbt import (
    COI_PREFIX,
    COI_VALUE_LENGTH,
    DIN_BARCODE_LENGTH,
    DIN_LENGTH,
    DIN_PREFIX,
    FLAGS_UNUSED,
    Coi,
    Din,
    UnitId,
    UnitKind,
    parse_coi,
    parse_din,
)
from celltrail_shared.identifiers.kinds import Identifier
from celltrail_shared.identifiers.parse import parse_identifier
from celltrail_shared.identifiers.qr import QR_PAYLOAD_VERSION, decode_qr_payload, encode_qr_payload

__all__ = [
    "COI_PREFIX",
    "COI_VALUE_LENGTH",
    "DIN_BARCODE_LENGTH",
    "DIN_LENGTH",
    "DIN_PREFIX",
    "FLAGS_UNUSED",
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
