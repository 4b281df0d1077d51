"""Shipments, their manifests and the temperature profiles they snapshot."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from backend.domain.custody import ShipmentState
from backend.services import archive

if TYPE_CHECKING:
    from backend.db.types import Conn


class ShipmentRow(msgspec.Struct, frozen=True):
    id: str
    coi: str
    from_site: str
    to_site: str
    container_id: str
    logger_id: str | None
    profile_code: str
    profile_version: int
    profile: Any
    planned_departure: datetime
    planned_arrival: datetime
    seals: list[str]
    waybill: str | None
    status: str
    holder_id: int | None
    holder_name: str | None
    departed_at: datetime | None
    arrived_at: datetime | None
    received_at: datetime | None
    manifest: list[str]
    packed: list[str]
    receipt_scanned: list[str]
    open_handover_id: int | None
    open_handover_to: str | None
    # The courier company the leg is assigned to (migration 0055), if any.
    courier_organisation: str | None = None

    def state(self) -> ShipmentState:
        return ShipmentState(
            self.id,
            self.coi,
            self.from_site,
            self.to_site,
            self.status,
            self.holder_id,
            frozenset(self.manifest),
            frozenset(self.packed),
            frozenset(self.receipt_scanned),
            self.open_handover_id is not None,
        )


_SELECT = """
SELECT s.id, s.coi, s.from_site, s.to_site, s.container_id, s.logger_id, s.profile_code, s.profile_version,
       s.profile, s.planned_departure, s.planned_arrival, s.seals, s.waybill, s.status, s.holder_id,
       (SELECT full_name FROM users WHERE id = s.holder_id) AS holder_name,
       s.departed_at, s.arrived_at, s.received_at,
       ARRAY(SELECT unit_id FROM shipment_units WHERE shipment_id = s.id ORDER BY unit_id) AS manifest,
       ARRAY(SELECT unit_id FROM shipment_units WHERE shipment_id = s.id AND packed ORDER BY unit_id) AS packed,
       ARRAY(SELECT unit_id FROM shipment_units WHERE shipment_id = s.id AND receipt_scanned
             ORDER BY unit_id) AS receipt_scanned,
       h.id AS open_handover_id, (SELECT username FROM users WHERE id = h.receiver_id) AS open_handover_to,
       s.courier_organisation
FROM shipments s
LEFT JOIN handovers h ON h.shipment_id = s.id AND h.confirmed_at IS NULL
"""


async def profile(conn: Conn, code: str, sites: list[str] | None = None) -> tuple[int, Any] | None:
    """The version a new shipment snapshots: the newest approved one. A pending (proposed, not yet
    approved by a second person) or refused version is never used (backend/services/profiles.py).
    `sites`: when given, a site's own profile is found only for one of them (network profiles always)."""
    row = await conn.fetchrow(
        """SELECT version, definition FROM temperature_profiles
           WHERE code = $1 AND status = 'approved'
             AND ($2::text[] IS NULL OR owner_site IS NULL OR owner_site = ANY($2))
           ORDER BY version DESC LIMIT 1""",
        code,
        sites,
    )
    return (row["version"], row["definition"]) if row else None


async def next_number(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT nextval('shipment_sequence')"))


# The partial unique index of migration 0009: one active shipment per logger.
ONE_ACTIVE_PER_LOGGER = "shipments_one_active_per_logger"


async def insert(conn: Conn, values: dict[str, Any], unit_ids: list[str]) -> bool:
    """False, with nothing written, when the logger is already on another active shipment (the caller's
    transaction is then aborted and must end)."""
    try:
        await _insert_row(conn, values)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == ONE_ACTIVE_PER_LOGGER:
            return False
        raise
    await conn.execute(
        "INSERT INTO shipment_units (shipment_id, unit_id) SELECT $1, unnest($2::text[])",
        values["id"],
        unit_ids,
    )
    return True


async def _insert_row(conn: Conn, values: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code,
                                  profile_version, profile, planned_departure, planned_arrival, seals, waybill)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        values["id"],
        values["coi"],
        values["from_site"],
        values["to_site"],
        values["container_id"],
        values["logger_id"],
        values["profile_code"],
        values["profile_version"],
        values["profile"],
        values["planned_departure"],
        values["planned_arrival"],
        values["seals"],
        values["waybill"],
    )


async def get(conn: Conn, shipment_id: str, lock: bool = False) -> ShipmentRow | None:
    if lock:
        await conn.execute("SELECT 1 FROM shipments WHERE id = $1 FOR UPDATE", shipment_id)
    row = await conn.fetchrow(_SELECT + " WHERE s.id = $1", shipment_id)
    return ShipmentRow(**row) if row else None


async def list_for(
    conn: Conn, sites: list[str] | None, active_only: bool, limit: int, courier: str | None = None
) -> list[ShipmentRow]:
    """`courier`: a courier company whose assigned legs are listed besides those of `sites`."""
    # The active view names the finished statuses as constants, so its plan (generic ones included) reads
    # the index of active shipments (migration 0040) rather than every shipment ever made.
    active = " AND s.status NOT IN ('received', 'quarantined', 'cancelled')" if active_only else ""
    rows = await conn.fetch(
        _SELECT
        + " WHERE ($1::text[] IS NULL OR s.from_site = ANY($1) OR s.to_site = ANY($1)"
        + " OR s.courier_organisation = $3)"
        + active
        + " ORDER BY s.planned_departure DESC LIMIT $2",
        sites,
        limit,
        courier,
    )
    return [ShipmentRow(**r) for r in rows]


async def set_courier(conn: Conn, shipment_id: str, organisation: str | None) -> None:
    await conn.execute(
        "UPDATE shipments SET courier_organisation = $2 WHERE id = $1", shipment_id, organisation
    )


async def of_case(conn: Conn, coi: str) -> list[ShipmentRow]:
    return [
        ShipmentRow(**r) for r in await conn.fetch(_SELECT + " WHERE s.coi = $1 ORDER BY s.created_at", coi)
    ]


async def set_status(conn: Conn, shipment_id: str, status: str) -> None:
    await conn.execute(
        """UPDATE shipments SET status = $2,
               departed_at = CASE WHEN $2 = 'in_transit' AND departed_at IS NULL THEN now() ELSE departed_at END,
               arrived_at = CASE WHEN $2 = 'arrived' THEN now() ELSE arrived_at END,
               received_at = CASE WHEN $2 IN ('received', 'quarantined') THEN now() ELSE received_at END
           WHERE id = $1""",
        shipment_id,
        status,
    )


async def set_holder(conn: Conn, shipment_id: str, holder_id: int | None) -> None:
    await conn.execute("UPDATE shipments SET holder_id = $2 WHERE id = $1", shipment_id, holder_id)


async def mark_units(conn: Conn, shipment_id: str, unit_ids: list[str], column: str) -> None:
    assert column in ("packed", "receipt_scanned")  # a column name cannot be a bind parameter
    await conn.execute(
        f"UPDATE shipment_units SET {column} = true WHERE shipment_id = $1 AND unit_id = ANY($2::text[])",  # noqa: S608
        shipment_id,
        unit_ids,
    )


async def temperature_rows(conn: Conn, shipment_id: str) -> list[tuple[datetime, float]]:
    # The leg's readings by its window (migration 0023), not by where each was filed when stored.
    rows = await conn.fetch("SELECT ts, temp_c FROM leg_readings($1) ORDER BY ts", shipment_id)
    found = [(r["ts"], float(r["temp_c"])) for r in rows]
    # Months archived out of the database are read from their files (issue 26).
    kept = await archive.leg_readings(conn, shipment_id)
    if not kept:
        return found
    seen = {r.ts for r in kept}
    return sorted([(r.ts, r.temp_c) for r in kept] + [f for f in found if f[0] not in seen])
