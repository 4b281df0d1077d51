"""Celltrail's own identifiers: shipment and logger ids."""

import re

import msgspec

from celltrail_shared.identifiers.errors import IdentifierError

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
