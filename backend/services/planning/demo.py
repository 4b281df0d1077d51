"""Demo planning data for `celltrail up --demo` (called from backend/demo.py): CTA's capacity, apheresis
slots at two hospitals' collection units, completed cases of the past weeks (so the KPI page has
figures), plans for the cases in flight, and bookings ahead.

The completed cases go through the same services as every scan, with the record's clock set to the past
instants they stand for, so their chains verify and their KPIs come from the record like any other."""

from __future__ import annotations

import contextlib
import inspect
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

from backend.db.repo import planning as repo
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.services import chain as chains
from backend.services.planning import bookings, capacity, orders

log = logging.getLogger(__name__)

ZONE = ZoneInfo("Europe/Zurich")
SUITES = ["CR-A", "CR-B", "CR-C", "CR-D", "CR-E", "CR-F"]
COLLECTION_SITES = ("USZ-APH", "KSW-APH")
# (treatment site, collection site, days ago collected, turnaround days, days from release to infusion,
#  inbound hours late): completed cases of the past weeks.
HISTORY = (
    ("USZ", "USZ-APH", 62, 14, 6, 0),
    ("USZ", "USZ-APH", 55, 15, 5, 3),
    ("KSW", "KSW-APH", 49, 14, 7, 0),
    ("USZ", "USZ-APH", 41, 17, 6, 0),
    ("KSW", "KSW-APH", 33, 16, 8, 14),
    ("USZ", "USZ-APH", 28, 14, 5, 0),
)


@contextlib.contextmanager
def _clock(start: datetime) -> Iterator[list[datetime]]:
    """The record's clock, set to `start` and moved by the caller."""
    now = [start]

    def clock() -> datetime:
        return now[0]

    # Every service reads the time as `chain.now()`, so patching it there moves all of them.
    with mock.patch.object(chains, "now", clock):
        yield now


def _local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), ZONE).astimezone(UTC)


PEOPLE = (
    "coordinator",
    "manufacturing",
    "qa",
    "courier",
    "nurse",
    "pharmacist",
    "nurse.ksw",
    "pharmacist.ksw",
)


async def seed(pool: Pool, password: str, fin: str) -> None:
    """Idempotent: nothing is added once CTA has declared capacity."""
    from backend.db.repo import users
    from backend.services import auth

    people: dict[str, Principal] = {}
    async with pool.acquire() as conn:
        if await repo.capacity(conn, "CTA"):
            return  # seeded by an earlier start
        for name in PEOPLE:
            user = await users.by_username(conn, name)
            assert user is not None, name
            people[name] = auth.principal_of(user)
    today = datetime.now(UTC).astimezone(ZONE).date()
    mfg, coord = people["manufacturing"], people["coordinator"]
    await capacity.set_capacity(pool, mfg, "CTA", "car-t", 3, SUITES)
    await capacity.set_blackout(pool, mfg, "CTA", today + timedelta(days=10), "cleanroom requalification")
    for site in COLLECTION_SITES:
        wanted = [
            capacity.SlotIn(datetime.combine(today + timedelta(days=d), time(h)), 240)
            for d in range(-70, 29)
            if (today + timedelta(days=d)).weekday() < 5
            for h in (8, 13)
        ]
        for chunk in range(0, len(wanted), capacity.MAX_SLOTS):
            await capacity.add_slots(pool, coord, site, wanted[chunk : chunk + capacity.MAX_SLOTS])
    for index, row in enumerate(HISTORY):
        await _completed_case(pool, people, password, fin, today, index, *row)
    # The journeys in flight (backend/demo.py), planned from the slot they were collected in.
    async with pool.acquire() as conn:
        in_flight = [
            r["coi"]
            for r in await conn.fetch(
                "SELECT coi FROM cases WHERE patient_ref LIKE 'DEMO-0%' AND status = 'open' ORDER BY coi"
            )
        ]
    for hours, coi in enumerate(in_flight, start=3):
        await _order(pool, people, password, coi, "USZ-APH")
        await _book_past(pool, coord, coi, "USZ-APH", datetime.now(UTC) - timedelta(hours=hours))
    # Booked ahead: two KSW patients and one at USZ.
    from backend.services import cases

    for number, (site, collection, days) in enumerate(
        (("KSW", "KSW-APH", 6), ("KSW", "KSW-APH", 13), ("USZ", "USZ-APH", 8))
    ):
        case = await cases.create_case(
            pool,
            coord,
            treatment_site=site,
            therapy="CAR-T (autologous), demo",
            patient_ref=f"DEMO-B{number + 1:02d}",
            birth_year=1975,
            fin=fin,
        )
        await _order(pool, people, password, case.coi, collection)
        _zone, choices = await bookings.choices(pool, coord, case.coi, today + timedelta(days=days), 14)
        slot = next(c for c in choices if c.fits)
        await bookings.book(pool, coord, case.coi, slot.id)
    log.info("demo planning in place", extra={"history": len(HISTORY), "in_flight": len(in_flight)})


async def _order(pool: Pool, people: dict[str, Principal], password: str, coi: str, collection: str) -> None:
    await orders.create_order(
        pool,
        people["coordinator"],
        coi,
        product="car-t",
        collection_site=collection,
        manufacturing_site="CTA",
        mdt_reference=f"MDT-{coi[-6:]}",
        mdt_date=chains.now().date() - timedelta(days=3),
        physician="Dr. Anna Meier",
    )
    await orders.decide(pool, people["manufacturing"], coi, accept=True, password=password, reason=None)


async def _book_past(pool: Pool, principal: Principal, coi: str, site: str, collected: datetime) -> None:
    """A booking on the slot the case was collected in: booked before it began, as it would have been."""
    async with pool.acquire() as conn, conn.transaction():
        slot_id = await repo.add_slot(
            conn,
            site,
            collected.replace(minute=0, second=0, microsecond=0),
            collected.replace(minute=0, second=0, microsecond=0) + timedelta(hours=4),
        )
        if slot_id is None:
            slot_id = await conn.fetchval(
                "SELECT id FROM collection_slots WHERE site = $1 AND starts_at = $2",
                site,
                collected.replace(minute=0, second=0, microsecond=0),
            )
        order = await repo.live_order(conn, coi, lock=True)
        assert order is not None
        await bookings.reserve(conn, principal, order, slot_id, collected - timedelta(days=7))


async def _completed_case(
    pool: Pool,
    people: dict[str, Principal],
    password: str,
    fin: str,
    today: date,
    index: int,
    site: str,
    collection: str,
    days_ago: int,
    turnaround: int,
    to_infusion: int,
    late_hours: int,
) -> None:
    from backend.domain.custody import Action
    from backend.services import cases, scans, shipments
    from backend.services.scans import ScanCommand

    day = today - timedelta(days=days_ago)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    collected = _local(day, 8)
    pharmacists = ("nurse", "pharmacist") if site == "USZ" else ("nurse.ksw", "pharmacist.ksw")
    nurse = pharmacists[0]

    async def scan(who: str, action: Action, where: str, *codes: str, **extra: Any) -> None:
        command = ScanCommand(
            idempotency_key=uuid.uuid4().hex, action=action, site=where, codes=list(codes), **extra
        )
        outcome = await scans.record_scan(pool, people[who], command, 30)
        if isinstance(outcome, scans.Refused):
            raise RuntimeError(f"demo history {action} refused: {outcome.detail}")

    async def leg(
        who: str, coi: str, units: list[str], route: tuple[str, str], profile: str, hours: int
    ) -> str:
        row = await shipments.create_shipment(
            pool,
            people[who],
            coi=coi,
            from_site=route[0],
            to_site=route[1],
            container_id=f"DEMO-H{index}-{profile}",
            logger_id=None,
            profile=profile,
            planned_departure=now[0],
            planned_arrival=now[0] + timedelta(hours=hours),
            unit_ids=units,
            seals=[f"SEAL-H{index}-{profile}"],
            waybill=None,
        )
        return row.id

    checklist = {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True}
    with _clock(collected - timedelta(days=12)) as now:
        case = await cases.create_case(
            pool,
            people["coordinator"],
            treatment_site=site,
            therapy="CAR-T (autologous), demo",
            patient_ref=f"DEMO-H{index + 1:02d}",
            birth_year=1960 + index,
            fin=fin,
        )
        await _order(pool, people, password, case.coi, collection)
        await _book_past(pool, people["coordinator"], case.coi, collection, collected)
        now[0] = collected
        aph = await cases.create_unit(
            pool,
            people[nurse],
            case.coi,
            kind="APH",
            product="Apheresis (leukapheresis)",
            din=None,
            expires_at=collected + timedelta(hours=48),
            site=collection,
        )
        await scan(nurse, Action.LABEL, collection, aph.id)
        now[0] = collected + timedelta(hours=2)
        inbound = await leg("coordinator", case.coi, [aph.id], (collection, "CTA"), "fresh", 6)
        await scan(nurse, Action.PACK, collection, inbound, aph.id)
        await scan("courier", Action.PICKUP, collection, inbound)
        now[0] += timedelta(hours=6 + late_hours)
        await scan("manufacturing", Action.RECEIVE, "CTA", inbound)
        await scan("manufacturing", Action.RECEIVE, "CTA", inbound, aph.id)
        now[0] += timedelta(hours=1)
        await shipments.decide_receipt(
            pool,
            people["manufacturing"],
            inbound,
            accept=True,
            checklist=checklist,
            comment=None,
            password=password,
        )
        started = now[0]
        now[0] = started + timedelta(days=turnaround - 1)
        # The bag names its starting material where the registration takes it (backend/services/cases.py);
        # asked by name so the demo runs on either side of that change.
        made_from: dict[str, Any] = (
            {"from_units": [aph.id]}
            if "from_units" in inspect.signature(cases.create_unit).parameters
            else {}
        )
        product = await cases.create_unit(
            pool,
            people["manufacturing"],
            case.coi,
            kind="PRC",
            product="Autologous CAR-T cells, cryopreserved",
            din=None,
            expires_at=now[0] + timedelta(days=180),
            site="CTA",
            **made_from,
        )
        await scan("manufacturing", Action.LABEL, "CTA", product.id)
        now[0] = started + timedelta(days=turnaround)
        await cases.release_unit(pool, people["qa"], product.id, password=password)
        now[0] += timedelta(days=2)
        outbound = await leg("manufacturing", case.coi, [product.id], ("CTA", site), "cryo", 24)
        await scan("manufacturing", Action.PACK, "CTA", outbound, product.id)
        await scan("courier", Action.PICKUP, "CTA", outbound)
        now[0] += timedelta(hours=22)
        await scan(nurse, Action.RECEIVE, site, outbound)
        await scan(nurse, Action.RECEIVE, site, outbound, product.id)
        await shipments.decide_receipt(
            pool, people[nurse], outbound, accept=True, checklist=checklist, comment=None, password=password
        )
        await scan(nurse, Action.STORE, site, product.id, storage_location="LN2 freezer 1")
        now[0] = started + timedelta(days=turnaround + to_infusion)
        await scan(nurse, Action.DISPENSE, site, product.id)
        await scan(nurse, Action.THAW, site, product.id)
        now[0] += timedelta(minutes=25)
        signatures = [
            scans.SignatureInput(pharmacists[0], password, "verified at bedside"),
            scans.SignatureInput(pharmacists[1], password, "administered"),
        ]
        await scan(nurse, Action.INFUSE, site, f"&/{case.coi}", product.id, signatures=signatures)
