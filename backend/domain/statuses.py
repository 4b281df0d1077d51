"""The statuses a unit, a shipment and a case go through, shared by the custody rules, the replay of the
record, the services and the API schemas. StrEnums: a member is its string, so the database columns, the
JSON bodies and the record keep the plain strings they always held."""

from __future__ import annotations

import enum


class UnitStatus(enum.StrEnum):
    """A unit's place in its custody steps (units.status); holds and releases are flags beside it."""

    CREATED = "created"
    LABELLED = "labelled"
    PACKED = "packed"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    STORED = "stored"
    DISPENSED = "dispensed"
    THAWED = "thawed"
    INFUSED = "infused"
    DISPOSED = "disposed"
    # Starting material made into a product bag.
    CONSUMED = "consumed"


class ShipmentStatus(enum.StrEnum):
    """A leg's status (shipments.status). `received`, `quarantined` and `cancelled` are final."""

    PLANNED = "planned"
    PACKING = "packing"
    PACKED = "packed"
    IN_TRANSIT = "in_transit"
    ARRIVED = "arrived"
    RECEIVED = "received"
    QUARANTINED = "quarantined"
    CANCELLED = "cancelled"


class CaseStatus(enum.StrEnum):
    """A case's lifecycle (cases.status, the CHECK constraint of the custody migration)."""

    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
