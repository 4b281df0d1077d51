"""A manufacturing site's capacity (runs that may start per day per product, the cleanroom suites they
run in, blackout days), a collection site's apheresis slots, and the calendars of both.

Whether a run fits is decided by `fit` (pure) on rows read under the capacity rows' locks
(`repo.lock_capacity`), so two bookings at one site are decided one after the other. Lowering capacity
never cancels a booking: `flags` names each booking that no longer fits, and the booking keeps its run
until someone reschedules or cancels it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from backend.db.repo import audit
from backend.db.repo import planning as repo
from backend.db.repo.planning import BookingRow, CapacityRow, SlotRow
from backend.db.types import Conn, Pool
from backend.domain.access import Principal
from backend.domain.errors import Conflict, InvalidInput
from backend.services import alerting

MAX_DAYS = 62
MAX_SLOTS = 200


def fit(
    capacity: Sequence[CapacityRow],
    product: str,
    site: str,
    start: date,
    end: date,
    blackouts: dict[date, str],
    bookings: Sequence[BookingRow],
) -> tuple[str | None, str]:
    """(suite, "") when a run of `product` can take [start, end) at `site`, else (None, why not)."""
    row = next((c for c in capacity if c.product == product), None)
    if row is None or row.runs_per_day == 0:
        return None, f"{site} has declared no capacity for {product}"
    if start in blackouts:
        return None, f"{site} starts no run on {start:%Y-%m-%d} ({blackouts[start]})"
    same_day = [b for b in bookings if b.product == product and b.manufacturing_start == start]
    if len(same_day) >= row.runs_per_day:
        return None, f"all {row.runs_per_day} run(s) of {product} on {start:%Y-%m-%d} at {site} are booked"
    for suite in row.suites:
        busy = any(
            b.suite == suite and b.manufacturing_start < end and b.manufacturing_end > start for b in bookings
        )
        if not busy:
            return suite, ""
    return None, f"every suite for {product} at {site} is taken between {start:%Y-%m-%d} and {end:%Y-%m-%d}"


def flags(
    capacity: Sequence[CapacityRow], blackouts: dict[date, str], bookings: Sequence[BookingRow]
) -> dict[int, str | None]:
    """For each booking (oldest first on each day), why it no longer fits, or None when it does."""
    found: dict[int, str | None] = {}
    counted: dict[tuple[str, date], int] = {}
    by_product = {c.product: c for c in capacity}
    for b in sorted(bookings, key=lambda b: (b.manufacturing_start, b.booked_at, b.id)):
        row = by_product.get(b.product)
        key = (b.product, b.manufacturing_start)
        counted[key] = counted.get(key, 0) + 1
        if row is None or row.runs_per_day == 0:
            found[b.id] = f"{b.manufacturing_site} no longer declares capacity for {b.product}"
        elif b.manufacturing_start in blackouts:
            found[b.id] = (
                f"{b.manufacturing_start:%Y-%m-%d} became a blackout day ({blackouts[b.manufacturing_start]})"
            )
        elif b.suite not in row.suites:
            found[b.id] = f"suite {b.suite} is no longer declared for {b.product}"
        elif counted[key] > row.runs_per_day:
            found[b.id] = (
                f"runs of {b.product} per day were lowered to {row.runs_per_day}; "
                f"this booking is run {counted[key]} on {b.manufacturing_start:%Y-%m-%d}"
            )
        else:
            found[b.id] = None
    return found


async def reflag(conn: Conn, site: str) -> int:
    """Flag or clear the site's future bookings after its capacity changed; a booking that no longer
    fits also raises a warning alert, cleared when it fits again. Returns how many are flagged."""
    zone = await repo.site_zone(conn, site) or "UTC"
    today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    capacity = await repo.lock_capacity(conn, site)
    future = await repo.future_bookings(conn, site, today)
    days = await repo.blackouts(conn, site, today, max((b.manufacturing_end for b in future), default=today))
    flagged = 0
    reasons = flags(capacity, days, future)
    for booking in future:
        reason = reasons[booking.id]
        if reason != booking.flag_reason:
            await repo.set_flag(conn, booking.id, reason)
        key = f"booking-fit:{booking.id}"
        if reason is None:
            if booking.flagged:
                await alerting.resolve_alert(conn, key)
            continue
        flagged += 1
        await alerting.raise_alert(
            conn,
            kind="booking_no_longer_fits",
            severity="warning",
            title=f"Booking of {booking.coi} no longer fits {site}'s capacity",
            detail=f"{reason}: reschedule or cancel the collection on {booking.collection_at:%Y-%m-%d}",
            condition_key=key,
            sites=[booking.ordering_site, booking.collection_site, site],
            coi=booking.coi,
        )
    return flagged


async def _manufacturing_site(conn: Conn, site: str) -> str:
    kind = await repo.site_kind(conn, site)
    if kind != "manufacturing":
        raise InvalidInput(f"{site} is not a manufacturing site; capacity is declared by manufacturing sites")
    return await repo.site_zone(conn, site) or "UTC"


async def set_capacity(
    pool: Pool, principal: Principal, site: str, product: str, runs_per_day: int, suites: list[str]
) -> list[CapacityRow]:
    clean = [s.strip() for s in suites if s.strip()]
    if len(set(clean)) != len(clean) or not clean:
        raise InvalidInput("suites must be named, each once", field_errors={"suites": "empty or repeated"})
    async with pool.acquire() as conn, conn.transaction():
        await _manufacturing_site(conn, site)
        if await repo.product(conn, product) is None:
            raise InvalidInput(f"no product {product!r}", field_errors={"product": "unknown"})
        before = {c.product: c for c in await repo.lock_capacity(conn, site)}.get(product)
        await repo.upsert_capacity(conn, site, product, runs_per_day, clean)
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action="set_capacity",
            entity="manufacturing_capacity",
            entity_id=f"{site}/{product}",
            old_value=None
            if before is None
            else {"runs_per_day": before.runs_per_day, "suites": before.suites},
            new_value={"runs_per_day": runs_per_day, "suites": clean},
            sites=[site],
        )
        await reflag(conn, site)
        return await repo.capacity(conn, site)


async def set_blackout(
    pool: Pool, principal: Principal, site: str, day: date, reason: str | None, remove: bool = False
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _manufacturing_site(conn, site)
        await repo.lock_capacity(conn, site)
        if remove:
            if not await repo.remove_blackout(conn, site, day):
                raise Conflict(f"{day:%Y-%m-%d} is not a blackout day at {site}")
        else:
            await repo.add_blackout(conn, site, day, reason or "blackout")
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action="remove_blackout" if remove else "add_blackout",
            entity="manufacturing_blackout",
            entity_id=f"{site}/{day.isoformat()}",
            new_value=None if remove else {"reason": reason},
            sites=[site],
        )
        await reflag(conn, site)


class SlotIn(msgspec.Struct, frozen=True):
    starts_at: datetime
    minutes: int


async def add_slots(pool: Pool, principal: Principal, site: str, wanted: list[SlotIn]) -> list[SlotRow]:
    if not wanted or len(wanted) > MAX_SLOTS:
        raise InvalidInput(f"give between 1 and {MAX_SLOTS} slots")
    async with pool.acquire() as conn, conn.transaction():
        if await repo.site_kind(conn, site) not in ("apheresis", "hospital"):
            raise InvalidInput(f"{site} does not collect; apheresis slots belong to collection sites")
        zone = ZoneInfo(await repo.site_zone(conn, site) or "UTC")
        added = []
        for slot in wanted:
            # A time without an offset is the site's local time.
            start = slot.starts_at if slot.starts_at.tzinfo else slot.starts_at.replace(tzinfo=zone)
            if not 15 <= slot.minutes <= 24 * 60:
                raise InvalidInput(
                    "a slot lasts between 15 minutes and a day", field_errors={"minutes": "range"}
                )
            slot_id = await repo.add_slot(conn, site, start, start + timedelta(minutes=slot.minutes))
            if slot_id is not None:
                added.append(slot_id)
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action="add_slots",
            entity="collection_slots",
            entity_id=site,
            new_value={"slots": added},
            sites=[site],
        )
        first = min(s.starts_at for s in wanted)
        first = first if first.tzinfo else first.replace(tzinfo=zone)
        rows = await repo.slots(conn, site, first, first + timedelta(days=MAX_DAYS))
    return [r for r in rows if r.id in added]


async def list_slots(pool: Pool, site: str, start: date, days: int) -> tuple[str, list[SlotRow]]:
    async with pool.acquire() as conn:
        zone = await repo.site_zone(conn, site) or "UTC"
        begin = datetime.combine(start, datetime.min.time(), ZoneInfo(zone))
        return zone, await repo.slots(conn, site, begin, begin + timedelta(days=min(days, MAX_DAYS)))


class SuiteDay(msgspec.Struct, frozen=True):
    suite: str
    coi: str | None
    product: str | None
    booking_id: int | None
    flagged: bool
    starts: bool


class CalendarDay(msgspec.Struct, frozen=True):
    day: date
    blackout: str | None
    suites: list[SuiteDay]
    # product -> [booked starts, runs per day]
    runs: dict[str, list[int]]
    free_suites: int


class Calendar(msgspec.Struct, frozen=True):
    site: str
    time_zone: str
    start: date
    days: list[CalendarDay]
    capacity: list[CapacityRow]
    flagged: list[dict[str, Any]]


async def calendar(pool: Pool, site: str, start: date, days: int) -> Calendar:
    days = max(1, min(days, MAX_DAYS))
    end = start + timedelta(days=days)
    async with pool.acquire() as conn:
        zone = await _manufacturing_site(conn, site)
        capacity = await repo.capacity(conn, site)
        dark = await repo.blackouts(conn, site, start, end)
        bookings = await repo.site_bookings(conn, site, start, end)
    suites = _suites(capacity, bookings)
    out = [
        _calendar_day(start + timedelta(days=offset), suites, capacity, dark, bookings)
        for offset in range(days)
    ]
    flagged = [
        {
            "booking_id": b.id,
            "coi": b.coi,
            "reason": b.flag_reason,
            "manufacturing_start": b.manufacturing_start,
        }
        for b in bookings
        if b.flagged
    ]
    return Calendar(site=site, time_zone=zone, start=start, days=out, capacity=capacity, flagged=flagged)


def _suites(capacity: Sequence[CapacityRow], bookings: Sequence[BookingRow]) -> list[str]:
    """The declared suites, then any a booking still holds that is no longer declared."""
    suites = list(dict.fromkeys(s for c in capacity for s in c.suites))
    for b in bookings:
        if b.suite not in suites:
            suites.append(b.suite)
    return suites


def _calendar_day(
    day: date,
    suites: list[str],
    capacity: Sequence[CapacityRow],
    dark: dict[date, str],
    bookings: Sequence[BookingRow],
) -> CalendarDay:
    cells = [_suite_day(suite, day, bookings) for suite in suites]
    runs = {
        c.product: [
            sum(1 for b in bookings if b.product == c.product and b.manufacturing_start == day),
            c.runs_per_day,
        ]
        for c in capacity
    }
    return CalendarDay(
        day=day,
        blackout=dark.get(day),
        suites=cells,
        runs=runs,
        free_suites=sum(1 for c in cells if c.coi is None),
    )


def _suite_day(suite: str, day: date, bookings: Sequence[BookingRow]) -> SuiteDay:
    held = next(
        (b for b in bookings if b.suite == suite and b.manufacturing_start <= day < b.manufacturing_end),
        None,
    )
    if held is None:
        return SuiteDay(suite=suite, coi=None, product=None, booking_id=None, flagged=False, starts=False)
    return SuiteDay(
        suite=suite,
        coi=held.coi,
        product=held.product,
        booking_id=held.id,
        flagged=bool(held.flagged),
        starts=held.manufacturing_start == day,
    )
