"""Allogeneic batches and the allocation of their units to recipients (migration 0053)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from backend.domain.allogeneic import Allocation

if TYPE_CHECKING:
    from backend.db.types import Conn


class BatchRow(msgspec.Struct, frozen=True):
    coi: str
    batch_id: str
    source_kind: str
    source_id: str
    product: str
    site: str
    units: int
    created_at: datetime


async def product_kind(conn: Conn, coi: str) -> str | None:
    value = await conn.fetchval("SELECT product_kind FROM cases WHERE coi = $1", coi)
    return str(value) if value is not None else None


async def set_product_kind(conn: Conn, coi: str, kind: str) -> None:
    await conn.execute("UPDATE cases SET product_kind = $2 WHERE coi = $1", coi, kind)


async def insert_batch(
    conn: Conn,
    coi: str,
    batch_id: str,
    source: tuple[str, str],
    product: str,
    site: str,
    units: int,
    created_by: int,
) -> None:
    await conn.execute(
        """INSERT INTO allogeneic_batches (coi, batch_id, source_kind, source_id, product, site, units,
                                           created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        coi,
        batch_id,
        *source,
        product,
        site,
        units,
        created_by,
    )


async def batch_id_taken(conn: Conn, batch_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM allogeneic_batches WHERE batch_id = $1", batch_id))


async def get_batch(conn: Conn, coi: str) -> BatchRow | None:
    row = await conn.fetchrow(
        """SELECT coi, batch_id, source_kind, source_id, product, site, units, created_at
             FROM allogeneic_batches WHERE coi = $1""",
        coi,
    )
    return BatchRow(**row) if row else None


async def insert_allocation(
    conn: Conn, unit_id: str, batch_coi: str, recipient_coi: str, event_id: int, allocated_by: int
) -> bool:
    """False when the unit was already allocated (the primary key decides, also between two requests
    at once)."""
    inserted = await conn.fetchval(
        """INSERT INTO unit_allocations (unit_id, batch_coi, recipient_coi, event_id, allocated_by)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (unit_id) DO NOTHING RETURNING 1""",
        unit_id,
        batch_coi,
        recipient_coi,
        event_id,
        allocated_by,
    )
    return inserted is not None


# The record's side is the accepted `allocate` event the row names, of the unit's own batch and naming
# the unit: a row pointed at another event (of another unit or batch) reads as no record at all.
_OF_UNITS = """
SELECT u.id AS unit_id, u.coi AS batch_coi, c.product_kind = 'allogeneic_batch' AS allogeneic,
       a.recipient_coi AS recipient, e.data ->> 'recipient_coi' AS recorded, r.status AS recipient_status
  FROM units u
  JOIN cases c ON c.coi = u.coi
  LEFT JOIN unit_allocations a ON a.unit_id = u.id
  LEFT JOIN cases r ON r.coi = a.recipient_coi
  LEFT JOIN custody_events e
         ON e.id = a.event_id AND e.coi = u.coi AND e.action = 'allocate' AND e.outcome = 'accepted'
        AND u.id = ANY (e.unit_ids)
 WHERE u.id = ANY ($1::text[])
"""


async def of_units(conn: Conn, unit_ids: list[str]) -> dict[str, Allocation]:
    rows = await conn.fetch(_OF_UNITS, unit_ids)
    return {r["unit_id"]: Allocation(**r) for r in rows}


async def of_recipient(conn: Conn, recipient_coi: str) -> dict[str, str]:
    """Unit -> its batch's COI, for the units allocated to a recipient's case."""
    rows = await conn.fetch(
        "SELECT unit_id, batch_coi FROM unit_allocations WHERE recipient_coi = $1", recipient_coi
    )
    return {str(r["unit_id"]): str(r["batch_coi"]) for r in rows}


async def of_batch(conn: Conn, batch_coi: str) -> dict[str, str]:
    """Unit -> the recipient's COI, for the allocated units of a batch."""
    rows = await conn.fetch(
        "SELECT unit_id, recipient_coi FROM unit_allocations WHERE batch_coi = $1", batch_coi
    )
    return {str(r["unit_id"]): str(r["recipient_coi"]) for r in rows}
