"""Allogeneic batches and the allocation of their units to recipients (migrations 0053, 0058). An
allocation is live until withdrawn; only live allocations count."""

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
    """False when the unit already has a live allocation (the unique index decides, also between two
    requests at once)."""
    inserted = await conn.fetchval(
        """INSERT INTO unit_allocations (unit_id, batch_coi, recipient_coi, event_id, allocated_by)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (unit_id) WHERE withdrawn_event_id IS NULL DO NOTHING RETURNING 1""",
        unit_id,
        batch_coi,
        recipient_coi,
        event_id,
        allocated_by,
    )
    return inserted is not None


# The record's side is the accepted `allocate` event the live row names, of the unit's own batch and
# naming the unit, and withdrawn by no accepted `withdraw_allocation` event: a row pointed at another
# event (of another unit or batch), or a withdrawn allocation made live again, reads as no record.
_OF_UNITS = """
SELECT u.id AS unit_id, u.coi AS batch_coi, c.product_kind = 'allogeneic_batch' AS allogeneic,
       a.recipient_coi AS recipient, e.data ->> 'recipient_coi' AS recorded, r.status AS recipient_status
  FROM units u
  JOIN cases c ON c.coi = u.coi
  LEFT JOIN unit_allocations a ON a.unit_id = u.id AND a.withdrawn_event_id IS NULL
  LEFT JOIN cases r ON r.coi = a.recipient_coi
  LEFT JOIN custody_events e
         ON e.id = a.event_id AND e.coi = u.coi AND e.action = 'allocate' AND e.outcome = 'accepted'
        AND u.id = ANY (e.unit_ids)
        AND NOT EXISTS (SELECT FROM custody_events w
                         WHERE w.coi = u.coi AND w.action = 'withdraw_allocation' AND w.outcome = 'accepted'
                           AND w.unit_ids @> ARRAY[u.id]
                           AND w.data ->> 'allocation_event_id' = a.event_id::text)
 WHERE u.id = ANY ($1::text[])
"""


async def of_units(conn: Conn, unit_ids: list[str]) -> dict[str, Allocation]:
    rows = await conn.fetch(_OF_UNITS, unit_ids)
    return {r["unit_id"]: Allocation(**r) for r in rows}


async def of_recipient(conn: Conn, recipient_coi: str) -> dict[str, str]:
    """Unit -> its batch's COI, for the units allocated to a recipient's case."""
    rows = await conn.fetch(
        """SELECT unit_id, batch_coi FROM unit_allocations
            WHERE recipient_coi = $1 AND withdrawn_event_id IS NULL""",
        recipient_coi,
    )
    return {str(r["unit_id"]): str(r["batch_coi"]) for r in rows}


async def of_batch(conn: Conn, batch_coi: str) -> dict[str, str]:
    """Unit -> the recipient's COI, for the allocated units of a batch."""
    rows = await conn.fetch(
        """SELECT unit_id, recipient_coi FROM unit_allocations
            WHERE batch_coi = $1 AND withdrawn_event_id IS NULL""",
        batch_coi,
    )
    return {str(r["unit_id"]): str(r["recipient_coi"]) for r in rows}


class LiveAllocation(msgspec.Struct, frozen=True):
    recipient_coi: str
    event_id: int


async def live(conn: Conn, unit_id: str) -> LiveAllocation | None:
    """The unit's live allocation as its row says (the caller holds the unit's lock)."""
    row = await conn.fetchrow(
        """SELECT recipient_coi, event_id FROM unit_allocations
            WHERE unit_id = $1 AND withdrawn_event_id IS NULL""",
        unit_id,
    )
    return LiveAllocation(row["recipient_coi"], row["event_id"]) if row else None


async def recorded_live(conn: Conn, batch_coi: str, unit_id: str) -> int:
    """How many allocations of the unit its batch's chain records and does not record withdrawn: 0 or 1
    unless the table was changed behind the record's back."""
    return int(
        await conn.fetchval(
            """SELECT count(*) FILTER (WHERE action = 'allocate')
                      - count(*) FILTER (WHERE action = 'withdraw_allocation')
                 FROM custody_events
                WHERE coi = $1 AND action IN ('allocate', 'withdraw_allocation') AND outcome = 'accepted'
                  AND unit_ids @> ARRAY[$2]""",
            batch_coi,
            unit_id,
        )
    )


async def mark_withdrawn(conn: Conn, unit_id: str, event_id: int, withdrawn_by: int, at: datetime) -> bool:
    """False when the unit had no live allocation left to withdraw."""
    done = await conn.fetchval(
        """UPDATE unit_allocations SET withdrawn_event_id = $2, withdrawn_by = $3, withdrawn_at = $4
            WHERE unit_id = $1 AND withdrawn_event_id IS NULL RETURNING 1""",
        unit_id,
        event_id,
        withdrawn_by,
        at,
    )
    return done is not None


async def complete_recipients(conn: Conn, unit_ids: list[str]) -> list[tuple[str, str, list[str]]]:
    """Mark completed the open recipients' cases to which these units are allocated (live) once a bag
    allocated to them was infused and none is left to give (each infused or disposed): (COI, treatment
    site, infused bags) of each case this call completed."""
    rows = await conn.fetch(
        """WITH touched AS (SELECT DISTINCT recipient_coi FROM unit_allocations
                             WHERE unit_id = ANY ($1::text[]) AND withdrawn_event_id IS NULL),
                bags AS (SELECT a.recipient_coi, u.id, u.status FROM unit_allocations a
                           JOIN units u ON u.id = a.unit_id
                          WHERE a.withdrawn_event_id IS NULL
                            AND a.recipient_coi IN (SELECT recipient_coi FROM touched)),
                done AS (SELECT recipient_coi,
                                array_agg(id ORDER BY id) FILTER (WHERE status = 'infused') AS infused
                           FROM bags GROUP BY recipient_coi
                         HAVING bool_or(status = 'infused') AND bool_and(status IN ('infused', 'disposed')))
           UPDATE cases c SET status = 'completed' FROM done
            WHERE c.coi = done.recipient_coi AND c.status = 'open'
                  AND c.product_kind = 'allogeneic_recipient'
        RETURNING c.coi, c.treatment_site, done.infused""",
        unit_ids,
    )
    return [(r["coi"], r["treatment_site"], list(r["infused"])) for r in rows]


class BookEntry(msgspec.Struct, frozen=True):
    unit_id: str
    batch_coi: str
    recipient_coi: str
    unit_status: str


async def bedside_book(conn: Conn, sites: list[str] | None) -> tuple[list[str], list[BookEntry]]:
    """For a bedside scanner of these sites (None: every site): the batches with a bag at one of them,
    and the live allocations of bags at them to recipients treated at them."""
    batches = await conn.fetch(
        """SELECT DISTINCT u.coi FROM units u JOIN cases c ON c.coi = u.coi
            WHERE c.product_kind = 'allogeneic_batch' AND ($1::text[] IS NULL OR u.site = ANY ($1::text[]))
            ORDER BY 1""",
        sites,
    )
    rows = await conn.fetch(
        """SELECT a.unit_id, a.batch_coi, a.recipient_coi, u.status AS unit_status
             FROM unit_allocations a
             JOIN units u ON u.id = a.unit_id
             JOIN cases r ON r.coi = a.recipient_coi
            WHERE a.withdrawn_event_id IS NULL
              AND ($1::text[] IS NULL OR r.treatment_site = ANY ($1::text[]))
            ORDER BY a.unit_id""",
        sites,
    )
    return [str(r["coi"]) for r in batches], [BookEntry(**r) for r in rows]
