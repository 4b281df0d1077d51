"""The board's search box: every form in which a person meets an identifier finds the same shipment —
the COI printed on a label (``CH A9999 26 000001 [K]``, with or without its check character), as a
scanner types it (``&/CHA999926000001``, with a symbology prefix, or a QR payload ``CT1:COI:...``), or
compact; a unit id finds its case; shipment ids, container ids and logger ids by any part."""

from __future__ import annotations

import re
from typing import Final

from backend.services.board import BoardLine
from celltrail_shared.identifiers import Coi, IdentifierError, LoggerId, ShipmentId, UnitId, parse_identifier

_SYMBOLOGY: Final = re.compile(r"^\][A-Za-z][0-9]")
_QR: Final = re.compile(r"^CT[0-9]+:[A-Z]+:")
_CHECK: Final = re.compile(r"\[.\]$")


def compact(text: str) -> str:
    """Upper case without the wrappers a scanner or a label adds, and without spaces."""
    value = text.strip().upper()
    value = _SYMBOLOGY.sub("", value)
    value = _QR.sub("", value)
    value = _CHECK.sub("", value.rstrip())
    if value.startswith("&/"):
        value = value[2:]
    return re.sub(r"\s+", "", value)


def _key(text: str) -> str | None:
    try:
        identifier = parse_identifier(text)
    except IdentifierError:
        return None
    if isinstance(identifier, Coi):
        return identifier.value
    if isinstance(identifier, UnitId):
        return identifier.coi.value
    if isinstance(identifier, ShipmentId | LoggerId):
        return identifier.text
    return None


def matches(line: BoardLine, query: str | None) -> bool:
    if not query or not query.strip():
        return True
    row = line.row
    haystack = [compact(v) for v in (row.id, row.coi, row.container_id, row.logger_id or "")]
    key = _key(query)
    if key is not None and any(key == value for value in haystack):
        return True
    needle = compact(query)
    return bool(needle) and any(needle in value for value in haystack)


def search(lines: list[BoardLine], query: str | None) -> list[BoardLine]:
    return [line for line in lines if matches(line, query)]
