"""What the planning routes answer: treatment orders, bookings, capacity, slots and a product's limits
(backend/api/planning.py converts the rows with backend/api/reads.py)."""

from __future__ import annotations

from datetime import date, datetime

import msgspec


class OrderRead(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    coi: str
    product: str
    ordering_site: str
    collection_site: str
    manufacturing_site: str
    mdt_reference: str
    mdt_date: date
    physician: str
    status: str
    ordered_by: str
    ordered_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    decision_event_id: int | None
    withdrawn_by: str | None = None
    withdrawn_at: datetime | None = None
    withdrawal_reason: str | None = None


class CapacityRead(msgspec.Struct, frozen=True):
    site: str
    product: str
    runs_per_day: int
    suites: list[str]


class SlotRead(msgspec.Struct, frozen=True):
    id: int
    site: str
    starts_at: datetime
    ends_at: datetime
    booked_coi: str | None = None


class BookingRead(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    order_id: int
    coi: str
    slot_id: int
    ordering_site: str
    collection_site: str
    collection_at: datetime
    manufacturing_site: str
    product: str
    suite: str
    manufacturing_start: date
    manufacturing_end: date
    status: str
    flagged: bool
    flag_reason: str | None
    booked_at: datetime


class ProductLimitsRead(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    # Minutes from the thaw the record holds to the latest infusion.
    thaw_to_infusion_min: int
    # The storage range, whole degrees Celsius.
    storage_min_c: int
    storage_max_c: int
    # Days from manufacture (cryopreservation) to expiry.
    shelf_life_days: int
