"""Orders, capacity, slots, bookings and planned milestones (migration 0030). Row locks taken here are
what keep bookings from double-booking: see backend/services/planning/capacity.py for their order."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from backend.db.lead_times import LeadTimes

if TYPE_CHECKING:
    from backend.db.types import Conn


class OrderRow(msgspec.Struct, frozen=True, kw_only=True):
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

    @property
    def sites(self) -> list[str]:
        return [self.ordering_site, self.collection_site, self.manufacturing_site]


class CapacityRow(msgspec.Struct, frozen=True):
    site: str
    product: str
    runs_per_day: int
    suites: list[str]


class SlotRow(msgspec.Struct, frozen=True):
    id: int
    site: str
    starts_at: datetime
    ends_at: datetime
    booked_coi: str | None = None


class BookingRow(msgspec.Struct, frozen=True, kw_only=True):
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


_ORDER = """
SELECT o.id, o.coi, o.product, o.ordering_site, o.collection_site, o.manufacturing_site, o.mdt_reference,
       o.mdt_date, o.physician, o.status, (SELECT full_name FROM users WHERE id = o.ordered_by) AS ordered_by,
       o.ordered_at, (SELECT full_name FROM users WHERE id = o.decided_by) AS decided_by, o.decided_at,
       o.decision_reason, o.decision_event_id,
       (SELECT full_name FROM users WHERE id = o.withdrawn_by) AS withdrawn_by, o.withdrawn_at, o.withdrawal_reason
FROM treatment_orders o
"""

_BOOKING = """
SELECT b.id, b.order_id, b.coi, b.slot_id, o.ordering_site, s.site AS collection_site, s.starts_at AS collection_at,
       b.manufacturing_site, b.product, b.suite, b.manufacturing_start, b.manufacturing_end, b.status,
       b.flagged, b.flag_reason, b.booked_at
FROM bookings b JOIN collection_slots s ON s.id = b.slot_id JOIN treatment_orders o ON o.id = b.order_id
"""


# ------------------------------------------------------------------------------------------- products


async def product(conn: Conn, code: str) -> LeadTimes | None:
    row = await conn.fetchrow(
        """SELECT code, name, ship_after_collection_h, transit_in_h, start_after_arrival_h,
                  manufacturing_days, ship_after_release_h, transit_out_h, infusion_after_receipt_h, slack_h
           FROM planning_products WHERE code = $1""",
        code,
    )
    return LeadTimes(**row) if row else None


async def products(conn: Conn) -> list[LeadTimes]:
    rows = await conn.fetch(
        """SELECT code, name, ship_after_collection_h, transit_in_h, start_after_arrival_h,
                  manufacturing_days, ship_after_release_h, transit_out_h, infusion_after_receipt_h, slack_h
           FROM planning_products ORDER BY code"""
    )
    return [LeadTimes(**r) for r in rows]


async def site_zone(conn: Conn, site: str) -> str | None:
    zone: str | None = await conn.fetchval("SELECT time_zone FROM sites WHERE code = $1", site)
    return zone


async def site_kind(conn: Conn, site: str) -> str | None:
    kind: str | None = await conn.fetchval("SELECT kind FROM sites WHERE code = $1", site)
    return kind


# --------------------------------------------------------------------------------------------- orders


async def insert_order(
    conn: Conn,
    *,
    coi: str,
    product: str,
    ordering_site: str,
    collection_site: str,
    manufacturing_site: str,
    mdt_reference: str,
    mdt_date: date,
    physician: str,
    ordered_by: int,
    at: datetime,
) -> int:
    order_id: int = await conn.fetchval(
        """INSERT INTO treatment_orders (coi, product, ordering_site, collection_site, manufacturing_site,
               mdt_reference, mdt_date, physician, ordered_by, ordered_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id""",
        coi,
        product,
        ordering_site,
        collection_site,
        manufacturing_site,
        mdt_reference,
        mdt_date,
        physician,
        ordered_by,
        at,
    )
    return order_id


async def live_order(conn: Conn, coi: str, lock: bool = False) -> OrderRow | None:
    sql = _ORDER + " WHERE o.coi = $1 AND o.status IN ('requested', 'accepted')"
    row = await conn.fetchrow(sql + (" FOR UPDATE OF o" if lock else ""), coi)
    return OrderRow(**row) if row else None


async def orders_of_case(conn: Conn, coi: str) -> list[OrderRow]:
    rows = await conn.fetch(_ORDER + " WHERE o.coi = $1 ORDER BY o.id DESC", coi)
    return [OrderRow(**r) for r in rows]


async def orders_for_sites(conn: Conn, sites: list[str] | None, limit: int) -> list[OrderRow]:
    rows = await conn.fetch(
        _ORDER
        + """ WHERE $1::text[] IS NULL OR o.ordering_site = ANY($1) OR o.collection_site = ANY($1)
                 OR o.manufacturing_site = ANY($1)
              ORDER BY o.id DESC LIMIT $2""",
        sites,
        limit,
    )
    return [OrderRow(**r) for r in rows]


async def decide_order(
    conn: Conn, order_id: int, status: str, user_id: int, at: datetime, reason: str | None, event_id: int
) -> None:
    await conn.execute(
        """UPDATE treatment_orders SET status = $2, decided_by = $3, decided_at = $4, decision_reason = $5,
               decision_event_id = $6 WHERE id = $1""",
        order_id,
        status,
        user_id,
        at,
        reason,
        event_id,
    )


async def withdraw_order(conn: Conn, order_id: int, user_id: int, at: datetime, reason: str) -> None:
    await conn.execute(
        """UPDATE treatment_orders SET status = 'withdrawn', withdrawn_by = $2, withdrawn_at = $3,
               withdrawal_reason = $4
           WHERE id = $1""",
        order_id,
        user_id,
        at,
        reason,
    )


# ------------------------------------------------------------------------------------------- capacity


async def capacity(conn: Conn, site: str) -> list[CapacityRow]:
    rows = await conn.fetch(
        "SELECT site, product, runs_per_day, suites FROM manufacturing_capacity WHERE site = $1 ORDER BY product",
        site,
    )
    return [CapacityRow(r["site"], r["product"], r["runs_per_day"], list(r["suites"])) for r in rows]


async def lock_capacity(conn: Conn, site: str) -> list[CapacityRow]:
    """Every capacity row of the site, locked: bookings at one manufacturing site queue up here, so the
    count of runs and the suites' occupancy they read cannot change until they commit."""
    rows = await conn.fetch(
        """SELECT site, product, runs_per_day, suites FROM manufacturing_capacity WHERE site = $1
           ORDER BY product FOR UPDATE""",
        site,
    )
    return [CapacityRow(r["site"], r["product"], r["runs_per_day"], list(r["suites"])) for r in rows]


async def upsert_capacity(conn: Conn, site: str, product: str, runs_per_day: int, suites: list[str]) -> None:
    await conn.execute(
        """INSERT INTO manufacturing_capacity (site, product, runs_per_day, suites) VALUES ($1, $2, $3, $4)
           ON CONFLICT (site, product) DO UPDATE
               SET runs_per_day = EXCLUDED.runs_per_day, suites = EXCLUDED.suites, updated_at = now()""",
        site,
        product,
        runs_per_day,
        suites,
    )


async def blackouts(conn: Conn, site: str, start: date, end: date) -> dict[date, str]:
    rows = await conn.fetch(
        "SELECT day, reason FROM manufacturing_blackouts WHERE site = $1 AND day >= $2 AND day < $3",
        site,
        start,
        end,
    )
    return {r["day"]: r["reason"] for r in rows}


async def add_blackout(conn: Conn, site: str, day: date, reason: str) -> None:
    await conn.execute(
        """INSERT INTO manufacturing_blackouts (site, day, reason) VALUES ($1, $2, $3)
           ON CONFLICT (site, day) DO UPDATE SET reason = EXCLUDED.reason""",
        site,
        day,
        reason,
    )


async def remove_blackout(conn: Conn, site: str, day: date) -> bool:
    done: str = await conn.execute(
        "DELETE FROM manufacturing_blackouts WHERE site = $1 AND day = $2", site, day
    )
    return done.endswith(" 1")


# ---------------------------------------------------------------------------------------------- slots


async def add_slot(conn: Conn, site: str, starts_at: datetime, ends_at: datetime) -> int | None:
    slot_id: int | None = await conn.fetchval(
        """INSERT INTO collection_slots (site, starts_at, ends_at) VALUES ($1, $2, $3)
           ON CONFLICT (site, starts_at) DO NOTHING RETURNING id""",
        site,
        starts_at,
        ends_at,
    )
    return slot_id


async def slots(conn: Conn, site: str, start: datetime, end: datetime) -> list[SlotRow]:
    rows = await conn.fetch(
        """SELECT s.id, s.site, s.starts_at, s.ends_at, b.coi AS booked_coi
           FROM collection_slots s LEFT JOIN bookings b ON b.slot_id = s.id AND b.status = 'active'
           WHERE s.site = $1 AND s.starts_at >= $2 AND s.starts_at < $3 ORDER BY s.starts_at""",
        site,
        start,
        end,
    )
    return [SlotRow(**r) for r in rows]


async def lock_slot(conn: Conn, slot_id: int) -> SlotRow | None:
    row = await conn.fetchrow(
        "SELECT id, site, starts_at, ends_at FROM collection_slots WHERE id = $1 FOR UPDATE", slot_id
    )
    return SlotRow(**row) if row else None


async def slot_taken(conn: Conn, slot_id: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM bookings WHERE slot_id = $1 AND status = 'active')", slot_id
        )
    )


# ------------------------------------------------------------------------------------------- bookings


async def active_booking(conn: Conn, coi: str, lock: bool = False) -> BookingRow | None:
    sql = _BOOKING + " WHERE b.coi = $1 AND b.status = 'active'"
    row = await conn.fetchrow(sql + (" FOR UPDATE OF b" if lock else ""), coi)
    return BookingRow(**row) if row else None


async def site_bookings(conn: Conn, site: str, start: date, end: date) -> list[BookingRow]:
    """Active bookings whose run overlaps [start, end)."""
    rows = await conn.fetch(
        _BOOKING
        + """ WHERE b.manufacturing_site = $1 AND b.status = 'active'
                AND b.manufacturing_start < $3 AND b.manufacturing_end > $2
              ORDER BY b.manufacturing_start, b.booked_at, b.id""",
        site,
        start,
        end,
    )
    return [BookingRow(**r) for r in rows]


async def future_bookings(conn: Conn, site: str, today: date) -> list[BookingRow]:
    rows = await conn.fetch(
        _BOOKING
        + """ WHERE b.manufacturing_site = $1 AND b.status = 'active' AND b.manufacturing_start >= $2
              ORDER BY b.manufacturing_start, b.booked_at, b.id""",
        site,
        today,
    )
    return [BookingRow(**r) for r in rows]


async def insert_booking(
    conn: Conn,
    *,
    order_id: int,
    coi: str,
    slot_id: int,
    manufacturing_site: str,
    product: str,
    suite: str,
    start: date,
    end: date,
    booked_by: int,
    at: datetime,
) -> int:
    booking_id: int = await conn.fetchval(
        """INSERT INTO bookings (order_id, coi, slot_id, manufacturing_site, product, suite,
               manufacturing_start, manufacturing_end, booked_by, booked_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id""",
        order_id,
        coi,
        slot_id,
        manufacturing_site,
        product,
        suite,
        start,
        end,
        booked_by,
        at,
    )
    return booking_id


async def end_booking(
    conn: Conn, booking_id: int, status: str, user_id: int, at: datetime, reason: str
) -> None:
    await conn.execute(
        """UPDATE bookings SET status = $2, ended_by = $3, ended_at = $4, end_reason = $5
           WHERE id = $1 AND status = 'active'""",
        booking_id,
        status,
        user_id,
        at,
        reason,
    )


async def set_flag(conn: Conn, booking_id: int, reason: str | None) -> None:
    await conn.execute(
        "UPDATE bookings SET flagged = $2::text IS NOT NULL, flag_reason = $2::text WHERE id = $1",
        booking_id,
        reason,
    )


async def insert_milestones(conn: Conn, booking_id: int, coi: str, plan: list[tuple[str, datetime]]) -> None:
    await conn.executemany(
        "INSERT INTO plan_milestones (booking_id, coi, milestone, position, planned_at) VALUES ($1, $2, $3, $4, $5)",
        [(booking_id, coi, name, index, at) for index, (name, at) in enumerate(plan)],
    )


async def milestones(conn: Conn, booking_id: int) -> dict[str, datetime]:
    rows = await conn.fetch(
        "SELECT milestone, planned_at FROM plan_milestones WHERE booking_id = $1 ORDER BY position",
        booking_id,
    )
    return {r["milestone"]: r["planned_at"] for r in rows}


# ------------------------------------------------------------------------------------- the record


async def custody_steps(conn: Conn, cois: list[str]) -> list[Any]:
    """Accepted custody events that mark milestones, with their leg's sites."""
    rows: list[Any] = await conn.fetch(
        """SELECT e.coi, e.action, e.server_time, e.unit_ids, e.data, s.from_site, s.to_site
           FROM custody_events e LEFT JOIN shipments s ON s.id = e.shipment_id
           WHERE e.coi = ANY($1::text[]) AND e.outcome = 'accepted'
             AND e.action IN ('label', 'pickup', 'receipt', 'release', 'infuse')
           ORDER BY e.coi, e.seq""",
        cois,
    )
    return rows


async def apheresis_units(conn: Conn, cois: list[str]) -> dict[str, set[str]]:
    rows = await conn.fetch("SELECT coi, id FROM units WHERE coi = ANY($1::text[]) AND kind = 'APH'", cois)
    found: dict[str, set[str]] = {}
    for r in rows:
        found.setdefault(r["coi"], set()).add(r["id"])
    return found


async def planned_cases(conn: Conn) -> list[Any]:
    """Every active booking with its plan, lead times and sites: what the at-risk check walks."""
    rows: list[Any] = await conn.fetch(
        """SELECT b.id AS booking_id, b.coi, b.manufacturing_site, o.ordering_site, o.collection_site,
                  p.slack_h, (SELECT time_zone FROM sites WHERE code = o.ordering_site) AS time_zone
           FROM bookings b JOIN treatment_orders o ON o.id = b.order_id
           JOIN planning_products p ON p.code = b.product
           JOIN cases c ON c.coi = b.coi
           WHERE b.status = 'active' AND c.status = 'open'"""
    )
    return rows
