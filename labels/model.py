"""What goes on each kind of label. Identifiers are the domain types, so a label cannot carry a bad one."""

from datetime import datetime
from enum import StrEnum
from typing import Final, TypeAlias

import msgspec

from backend.domain.identifiers import Coi, Din, Giai, LoggerId, ShipmentId, Sscc, UnitId

AUTOLOGOUS_WARNING: Final = "FOR AUTOLOGOUS USE ONLY"
MAX_TEXT_LENGTH: Final = 200


class TemperatureProfile(StrEnum):
    FRESH = "fresh"
    ROOM = "room"
    CRYO = "cryo"


# (headline, range) printed for each profile unless the label overrides the range.
PROFILE_TEXT: Final = {
    TemperatureProfile.FRESH: ("FRESH – KEEP COOL", "2 °C to 8 °C"),
    TemperatureProfile.ROOM: ("CONTROLLED ROOM TEMPERATURE", "15 °C to 25 °C"),
    TemperatureProfile.CRYO: ("CRYOGENIC – LN2 DRY VAPOUR", "≤ −150 °C"),
}


class HandlingMark(StrEnum):
    THIS_WAY_UP = "this-way-up"
    FRAGILE = "fragile"
    DO_NOT_XRAY = "do-not-xray"
    DO_NOT_IRRADIATE = "do-not-irradiate"
    DO_NOT_FREEZE = "do-not-freeze"
    LIVING_CELLS = "living-cells"
    URGENT = "urgent"


MARK_TEXT: Final = {
    HandlingMark.THIS_WAY_UP: "THIS WAY UP",
    HandlingMark.FRAGILE: "FRAGILE",
    HandlingMark.DO_NOT_XRAY: "DO NOT X-RAY",
    HandlingMark.DO_NOT_IRRADIATE: "DO NOT IRRADIATE",
    HandlingMark.DO_NOT_FREEZE: "DO NOT FREEZE",
    HandlingMark.LIVING_CELLS: "LIVING HUMAN CELLS",
    HandlingMark.URGENT: "URGENT – DELIVER IMMEDIATELY",
}


def _check_text(field: str, value: str, *, required: bool) -> None:
    if required and not value.strip():
        raise ValueError(f"{field} must not be empty")
    if len(value) > MAX_TEXT_LENGTH:
        raise ValueError(f"{field} must be at most {MAX_TEXT_LENGTH} characters, got {len(value)}")


class BagLabel(msgspec.Struct, frozen=True, tag_field="kind", tag="bag"):
    """Starting-material or final-product bag: COI, unit id, optional DIN, product, expiry, storage."""

    coi: Coi
    unit: UnitId
    product: str
    expiry: datetime
    storage_temp: str = "≤ −150 °C"
    din: Din | None = None

    def __post_init__(self) -> None:
        # A bag labelled with another patient's COI is the error the whole system exists to prevent.
        if self.unit.coi != self.coi:
            raise ValueError(
                f"unit {self.unit.text} belongs to COI {self.unit.coi.value}, not {self.coi.value}"
            )
        _check_text("product", self.product, required=True)
        _check_text("storage_temp", self.storage_temp, required=True)


class ShipmentLabel(msgspec.Struct, frozen=True, tag_field="kind", tag="shipment"):
    """Outer label of a shipper: route, temperature profile, handling marks, shipment and SSCC codes."""

    shipment: ShipmentId
    from_site: str
    to_site: str
    temperature_profile: TemperatureProfile
    temperature_text: str | None = None  # overrides the profile's default range, e.g. "≤ −120 °C"
    sscc: Sscc | None = None
    logger: LoggerId | None = None
    handling: tuple[HandlingMark, ...] = ()

    def __post_init__(self) -> None:
        _check_text("from_site", self.from_site, required=True)
        _check_text("to_site", self.to_site, required=True)
        if self.temperature_text is not None:
            _check_text("temperature_text", self.temperature_text, required=True)

    @property
    def temperature_headline(self) -> str:
        return PROFILE_TEXT[self.temperature_profile][0]

    @property
    def temperature_range(self) -> str:
        return self.temperature_text or PROFILE_TEXT[self.temperature_profile][1]


class WristbandLabel(msgspec.Struct, frozen=True, tag_field="kind", tag="wristband"):
    """Patient wristband: the COI only (patient identity stays in the hospital's own systems)."""

    coi: Coi


class AssetTag(msgspec.Struct, frozen=True, tag_field="kind", tag="asset"):
    """A reusable shipper (GIAI) or a temperature logger."""

    asset: Giai | LoggerId
    description: str = ""

    def __post_init__(self) -> None:
        _check_text("description", self.description, required=False)


Label: TypeAlias = BagLabel | ShipmentLabel | WristbandLabel | AssetTag
