"""The Celltrail QR payload ``CT1:<KIND>:<ID>``."""

from typing import Final

from celltrail_shared.identifiers.celltrail import LoggerId, ShipmentId
from celltrail_shared.identifiers.errors import IdentifierError
from celltrail_shared.identifiers.gs1 import Giai, Gln, Sscc
from celltrail_shared.identifiers.isbt import DIN_PREFIX, Coi, Din, UnitId
from celltrail_shared.identifiers.kinds import Identifier

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
