"""Bodies of the custody API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from backend.api.schemas import LIST_MAX, NAME_MAX, TEXT_MAX, Command, OrganisationCode, SiteCode
from backend.domain import trials
from backend.domain.statuses import ShipmentStatus, UnitStatus

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Codes = Annotated[list[Code], msgspec.Meta(max_length=LIST_MAX)]
Comment = Annotated[str, msgspec.Meta(max_length=TEXT_MAX)]
# One key of a correction, a receipt checklist item: a short name.
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
# A corrected value is a scalar (a date, a number, a lot): text bounded, no nesting.
CorrectedValue = Annotated[str, msgspec.Meta(max_length=TEXT_MAX)] | int | float | bool | None


class TrialFields(Command):
    """The clinical trial a case belongs to (an investigational case): printed on its labels."""

    register: Annotated[
        str,
        msgspec.Meta(
            max_length=trials.MAX_REGISTER,
            pattern=trials.REGISTER_PATTERN,
            description="EU CT number, EudraCT number or ClinicalTrials.gov id",
            examples=["2024-512345-12-00", "NCT01234567"],
        ),
    ]
    protocol: Annotated[
        str,
        msgspec.Meta(max_length=trials.MAX_PROTOCOL, pattern=trials.CODE_PATTERN, examples=["CT-ALPHA-01"]),
    ]
    site_number: Annotated[
        str, msgspec.Meta(max_length=trials.MAX_SITE_NUMBER, pattern=trials.CODE_PATTERN, examples=["CH-03"])
    ]
    # The patient's pseudonym in the trial: the case holds no other patient data.
    subject: Annotated[
        str, msgspec.Meta(max_length=trials.MAX_SUBJECT, pattern=trials.CODE_PATTERN, examples=["03-0017"])
    ]
    sponsor: Annotated[
        str,
        msgspec.Meta(max_length=trials.MAX_SPONSOR, pattern=trials.SPONSOR_PATTERN, examples=["USZ"]),
    ]


class CaseCreate(Command):
    treatment_site: SiteCode
    therapy: Text
    patient_ref: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    birth_year: Annotated[int, msgspec.Meta(ge=1900, le=2100)] | None = None
    # An investigational case: then neither patient_ref nor birth_year (the subject id is the pseudonym).
    trial: TrialFields | None = None
    # The client the case is made for, named once as by PUT /cases/{coi}/client (docs/organisations.md).
    client_organisation: OrganisationCode | None = None


class TrialRead(msgspec.Struct, kw_only=True):
    register: str
    protocol: str
    site_number: str
    subject: str
    sponsor: str


class CaseRead(msgspec.Struct, kw_only=True):
    coi: str
    barcode: str
    eye_readable: str
    treatment_site: str
    therapy: str
    status: str
    created_at: datetime
    events: int
    sites: list[str]
    patient_ref: str | None = None
    birth_year: int | None = None
    trial: TrialRead | None = None


class UnitCreate(Command):
    # Biobank samples (SMP) are registered with their consent: POST /api/v1/cases/{coi}/samples.
    kind: Literal["APH", "PRC"]
    product: Text
    site: SiteCode
    din: Code | None = None
    expires_at: datetime | None = None
    # A product bag: the apheresis unit(s) it was made from, received at the registering site.
    from_units: Annotated[list[Code], msgspec.Meta(max_length=LIST_MAX)] | None = None
    # What the bag label prints beyond identity.
    product_code: (
        Annotated[
            str,
            msgspec.Meta(
                pattern="^[A-Z][0-9]{4}[A-Z0-9][A-Z0-9][a-z0-9]$",
                description="ISBT 128 product code without its '=<' data identifier",
                examples=["S1395V00"],
            ),
        ]
        | None
    ) = None
    lot: Annotated[str, msgspec.Meta(min_length=1, max_length=40, examples=["L2026-0042"])] | None = None
    volume: Annotated[str, msgspec.Meta(min_length=1, max_length=40, examples=["68 mL"])] | None = None
    # A product bag: its catalogue product (default: the case's order's) and when it was made
    # (cryopreserved; default: now), the start of its shelf life.
    catalogue_product: (
        Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{1,40}$", examples=["car-t"])] | None
    ) = None
    manufactured_at: datetime | None = None


class UnitRead(msgspec.Struct, kw_only=True):
    id: str
    coi: str
    kind: str
    din: str | None
    product: str
    expires_at: datetime | None
    status: str
    site: str | None
    shipment_id: str | None
    storage_location: str | None
    released: bool
    quarantined: bool
    thawed_at: datetime | None
    product_code: str | None = None
    lot: str | None = None
    volume: str | None = None
    catalogue_product: str | None = None
    manufactured_at: datetime | None = None
    consent_ref: str | None = None


# Where a sample sits: each part as the biobank's freezer inventory names it.
StoragePart = Annotated[
    str, msgspec.Meta(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*(?!\n)$")
]


class SampleCreate(Command):
    """A biobank sample of the case: what it is, where it was taken and the consent it was taken under."""

    description: Annotated[
        str,
        msgspec.Meta(min_length=1, max_length=40, examples=["retained product sample", "patient EDTA blood"]),
    ]
    site: SiteCode
    consent_ref: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=100,
            pattern=r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?(?!\n)$",
            description="the reference of the donor's consent (the consent form's id in the site's records)",
            examples=["BB-CONSENT-2026-0042"],
        ),
    ]


class SampleStorage(Command):
    """Store a sample at a position, or move it to another."""

    site: SiteCode
    freezer: StoragePart
    rack: StoragePart
    box: StoragePart
    position: StoragePart


class Signing(Command):
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class ShipmentCreate(Command):
    coi: Code
    from_site: SiteCode
    to_site: SiteCode
    container_id: Text
    profile: Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["fresh", "crt", "cryo"])]
    planned_departure: datetime
    planned_arrival: datetime
    units: Annotated[list[Code], msgspec.Meta(min_length=1, max_length=LIST_MAX)]
    logger_id: Code | None = None
    seals: Codes = msgspec.field(default_factory=list)
    waybill: Code | None = None
    # The courier company that carries the leg, named as by PUT /shipments/{id}/courier.
    courier_organisation: OrganisationCode | None = None


class ShipmentRead(msgspec.Struct, kw_only=True):
    id: str
    coi: str
    from_site: str
    to_site: str
    container_id: str
    logger_id: str | None
    profile: str
    limits: Any
    planned_departure: datetime
    planned_arrival: datetime
    seals: list[str]
    waybill: str | None
    status: str
    holder: str | None
    departed_at: datetime | None
    arrived_at: datetime | None
    received_at: datetime | None
    units: list[str]
    packed: list[str]
    receipt_scanned: list[str]
    pending_handover: int | None
    pending_handover_to: str | None


class Gps(msgspec.Struct, forbid_unknown_fields=True):
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    accuracy_m: Annotated[float, msgspec.Meta(ge=0)] | None = None


class SignatureIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    meaning: Annotated[
        str, msgspec.Meta(min_length=1, max_length=NAME_MAX, examples=["verified at bedside", "administered"])
    ]


class ScanRequest(Command):
    idempotency_key: Annotated[str, msgspec.Meta(min_length=8, max_length=100)]
    action: Literal[
        "label", "pack", "pickup", "handover", "receive", "store", "dispense", "thaw", "infuse", "dispose"
    ]
    site: SiteCode
    codes: Annotated[list[Code], msgspec.Meta(min_length=1, max_length=50)]
    device_time: datetime | None = None
    gps: Gps | None = None
    handover_to: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    storage_location: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    # Two-person steps take two; a few more leave room without inviting a thousand password checks.
    signatures: Annotated[list[SignatureIn], msgspec.Meta(max_length=5)] = msgspec.field(default_factory=list)


class ScanResult(msgspec.Struct, kw_only=True):
    event_id: int
    coi: str
    seq: int
    action: str
    outcome: str
    shipment_id: str | None
    unit_ids: list[str]
    # The statuses the step left (the OpenAPI document lists the values of backend/domain/statuses.py).
    shipment_status: ShipmentStatus | None
    unit_statuses: dict[str, UnitStatus]
    message: str
    server_time: str
    hash: str


class QaOverride(Command):
    """QA's signature accepting a delivery despite an unresolved critical excursion on its leg."""

    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    deviation: Annotated[
        str,
        msgspec.Meta(
            min_length=10,
            max_length=2000,
            description="the deviation QA accepts and why the product may still be used",
            examples=["above -150 C for 12 min at the hand-over; within the stability data (DEV-2026-041)"],
        ),
    ]


class ReceiptDecision(Command):
    decision: Literal["accept", "quarantine"]
    checklist: Annotated[dict[Key, bool], msgspec.Meta(max_length=50)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    comment: Comment | None = None
    qa_override: QaOverride | None = None


class Recorded(msgspec.Struct, kw_only=True):
    event_id: int
    seq: int
    hash: str
    server_time: datetime


class CaseCancellation(Command):
    reason: Annotated[
        str,
        msgspec.Meta(min_length=3, max_length=1000, examples=["patient withdrew consent before collection"]),
    ]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class DeviationCreate(Command):
    description: Annotated[
        str, msgspec.Meta(min_length=3, max_length=2000, examples=["shipper above -150 °C for 12 min"])
    ]
    impact: Annotated[
        str, msgspec.Meta(min_length=3, max_length=2000, examples=["within the product's stability data"])
    ]
    disposition: Literal["pending", "use as is", "rework", "reject"]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    # The case's custody events it concerns.
    event_ids: Annotated[list[int], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)


class HoldDecision(Command):
    reason: Annotated[
        str, msgspec.Meta(min_length=3, max_length=1000, examples=["sterility result pending (DEV-2026-044)"])
    ]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class RecordReview(Command):
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    comment: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class CorrectionCreate(Command):
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=1000)]
    # The corrected fields and their values: at most 50, each value a scalar (at most 2000 characters).
    fields: Annotated[dict[Key, CorrectedValue], msgspec.Meta(min_length=1, max_length=50)]


class AlertAck(Command):
    comment: Annotated[str, msgspec.Meta(min_length=1, max_length=TEXT_MAX)]


class AlertClose(Command):
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=TEXT_MAX)]
