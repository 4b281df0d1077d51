"""What goes on each kind of label. Identifiers are the domain types, so a label cannot carry a bad one."""

import re
from collections.abc import Collection
from datetime import date, datetime
from enum import StrEnum
from typing import Final, TypeAlias

import msgspec

from celltrail_shared.identifiers import Coi, Din, Giai, LoggerId, ShipmentId, Sscc, UnitId

AUTOLOGOUS_WARNING: Final = "FOR AUTOLOGOUS USE ONLY"
INVESTIGATIONAL_STATEMENT: Final = "FOR CLINICAL TRIAL USE ONLY"
SAMPLE_STATEMENT: Final = "RESEARCH SAMPLE - NOT FOR HUMAN USE"
MAX_TEXT_LENGTH: Final = 200
MAX_SHORT_TEXT_LENGTH: Final = 40
DEFAULT_STORAGE_TEMP: Final = "≤ −150 °C"

# ISBT 128 data structure 003, product code: ``=<`` + product description code (a letter and four digits;
# cellular therapy codes start with S) + type of donation (one character) + divisions (two characters, the
# second may be lower case). The backend's identifier parser names ``=<`` as the product code and treats
# it as no identifier, so a scanner ignores it rather than stopping on it.
PRODUCT_CODE_DI: Final = "=<"
_PRODUCT_CODE: Final = re.compile(r"[A-Z][0-9]{4}[A-Z0-9][A-Z0-9][a-z0-9]")


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


def _check_text(field: str, value: str, *, required: bool, limit: int = MAX_TEXT_LENGTH) -> None:
    if required and not value.strip():
        raise ValueError(f"{field} must not be empty")
    if len(value) > limit:
        raise ValueError(f"{field} must be at most {limit} characters, got {len(value)}")


def parse_product_code(text: str) -> str:
    """The 8-character ISBT 128 product code, given with or without its ``=<`` data identifier."""
    code = text.strip()
    code = code.removeprefix(PRODUCT_CODE_DI)
    if not _PRODUCT_CODE.fullmatch(code):
        raise ValueError(
            f"product code must be the ISBT 128 product code: a letter, 4 digits, the type of donation and "
            f"2 division characters, e.g. S1395V00 (optionally after '=<'), got {text!r}"
        )
    return code


class TrialStatement(msgspec.Struct, frozen=True):
    """The investigational statement of a clinical trial's product (EU CTR Annex VI, shortened for a
    label with the trial's identifiers): printed on the trial case's bags and wristband, never shortened
    (text that does not fit is refused)."""

    register: str  # EU CT number, EudraCT number or NCT id
    protocol: str
    site_number: str
    subject: str  # the patient's pseudonym in the trial
    sponsor: str

    def __post_init__(self) -> None:
        for name in ("register", "protocol", "site_number", "subject", "sponsor"):
            _check_text(name, getattr(self, name), required=True, limit=MAX_SHORT_TEXT_LENGTH)

    def lines(self) -> list[tuple[str, str]]:
        """(field, text) of each line: the statement, then the identifiers (wrapped where needed)."""
        identifiers = (
            f"TRIAL {self.register}  PROTOCOL {self.protocol}  SUBJECT {self.subject}  "
            f"SITE {self.site_number}  SPONSOR {self.sponsor}"
        )
        return [("investigational statement", INVESTIGATIONAL_STATEMENT), ("trial identifiers", identifiers)]


class BagLabel(msgspec.Struct, frozen=True, tag_field="kind", tag="bag"):
    """Starting-material or final-product bag: COI, unit id, optional DIN and ISBT 128 product code,
    product, lot, volume, expiry, storage and, for an autologous product, the autologous-use statement.

    ``lot`` and ``volume`` are optional because the record may not hold them yet (a starting material
    before collection is weighed); when given they are printed, never shortened.
    """

    coi: Coi
    unit: UnitId
    product: str
    expiry: datetime
    storage_temp: str = DEFAULT_STORAGE_TEMP
    din: Din | None = None
    product_code: str | None = None  # ISBT 128 product code, 8 characters without "=<"
    lot: str | None = None
    volume: str | None = None  # as printed, e.g. "68 mL"
    autologous: bool = True
    trial: TrialStatement | None = None  # a clinical trial's product: the investigational statement

    def __post_init__(self) -> None:
        # A bag labelled with another patient's COI is the error the whole system exists to prevent.
        if self.unit.coi != self.coi:
            raise ValueError(
                f"unit {self.unit.text} belongs to COI {self.unit.coi.value}, not {self.coi.value}"
            )
        _check_text("product", self.product, required=True)
        _check_text("storage_temp", self.storage_temp, required=True)
        if self.product_code is not None:
            parse_product_code(self.product_code)
            if self.product_code.startswith(PRODUCT_CODE_DI):
                raise ValueError("product_code is stored without its '=<' data identifier")
        for name in ("lot", "volume"):
            value = getattr(self, name)
            if value is not None:
                _check_text(name, value, required=True, limit=MAX_SHORT_TEXT_LENGTH)

    @property
    def product_code_barcode(self) -> str | None:
        """Code 128 content of the product code, with its ISBT 128 data identifier."""
        return None if self.product_code is None else PRODUCT_CODE_DI + self.product_code


class SampleLabel(msgspec.Struct, frozen=True, tag_field="kind", tag="sample"):
    """A biobank sample's tube or vial label (small): the sample's unit id in a QR code and in clear, its
    case's COI, what it is and that it is research material; a trial case's sample names its trial."""

    coi: Coi
    unit: UnitId
    description: str
    trial_register: str | None = None

    def __post_init__(self) -> None:
        if self.unit.coi != self.coi:
            raise ValueError(
                f"unit {self.unit.text} belongs to COI {self.unit.coi.value}, not {self.coi.value}"
            )
        if self.unit.kind.value != "SMP":
            raise ValueError(f"unit {self.unit.text} is not a sample (kind SMP)")
        _check_text("description", self.description, required=True, limit=MAX_SHORT_TEXT_LENGTH)
        if self.trial_register is not None:
            _check_text("trial_register", self.trial_register, required=True, limit=MAX_SHORT_TEXT_LENGTH)


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


class PatientField(StrEnum):
    """Patient identity a site's policy may require on the wristband."""

    NAME = "name"
    DATE_OF_BIRTH = "dob"
    HOSPITAL_NUMBER = "hospital-number"


class WristbandLabel(msgspec.Struct, frozen=True, tag_field="kind", tag="wristband"):
    """Patient wristband: the COI, and the patient's name, date of birth and hospital number where the
    site's policy puts them on the band (many hospitals require two patient identifiers at the bedside;
    others keep identity in their own systems). Each is printed only when given."""

    coi: Coi
    patient_name: str | None = None
    date_of_birth: date | None = None
    hospital_number: str | None = None
    # A trial subject's band: the investigational statement and subject id instead of identity.
    trial: TrialStatement | None = None

    def __post_init__(self) -> None:
        if self.trial is not None and self.present():
            raise ValueError(
                "a trial subject's wristband carries the subject identifier, not patient identity"
            )
        if self.patient_name is not None:
            _check_text("patient_name", self.patient_name, required=True, limit=80)
        if self.hospital_number is not None:
            _check_text("hospital_number", self.hospital_number, required=True, limit=MAX_SHORT_TEXT_LENGTH)

    def present(self) -> frozenset[PatientField]:
        fields = {
            PatientField.NAME: self.patient_name,
            PatientField.DATE_OF_BIRTH: self.date_of_birth,
            PatientField.HOSPITAL_NUMBER: self.hospital_number,
        }
        return frozenset(field for field, value in fields.items() if value is not None)


class LabelPolicyError(ValueError):
    """A label lacks what the site's policy requires (a ``ValueError``: CLI exit 2, API 422)."""


def check_wristband_policy(label: WristbandLabel, required: Collection[PatientField]) -> None:
    """Refuse a wristband missing a patient field the site requires: a band printed without the
    hospital's second identifier would be refused at the bedside, or worse, accepted by habit."""
    missing = [field.value for field in PatientField if field in required and field not in label.present()]
    if missing:
        raise LabelPolicyError(
            f"the site's wristband policy requires {', '.join(missing)}, which the label does not carry"
        )


class AssetTag(msgspec.Struct, frozen=True, tag_field="kind", tag="asset"):
    """A reusable shipper (GIAI) or a temperature logger."""

    asset: Giai | LoggerId
    description: str = ""

    def __post_init__(self) -> None:
        _check_text("description", self.description, required=False)


Label: TypeAlias = BagLabel | ShipmentLabel | WristbandLabel | AssetTag | SampleLabel
