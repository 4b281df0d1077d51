"""Orchestration: treatment orders, capacity and apheresis slots, bookings, the case's plan against its
record, and KPIs (docs/planning.md). Every route names a case (through the planning gate) or a site (the
caller must be bound to it)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from backend.api.planning_reads import BookingRead, CapacityRead, OrderRead, ProductLimitsRead, SlotRead
from backend.api.reads import read, reads
from backend.api.schemas import NAME_MAX, Command, Name, Password, Reason, SiteCode
from backend.db.types import Pool
from backend.domain.access import PEOPLE_ROLES, Principal, Role, policy
from backend.domain.errors import InvalidInput
from backend.services.planning import bookings, capacity, catalogue, kpis, listing, orders

PEOPLE: Final = tuple(PEOPLE_ROLES)
PLANNERS: Final = (Role.COORDINATOR, Role.MANUFACTURING, Role.QA, Role.ADMIN)
_MANUFACTURING_SITE = policy(Role.MANUFACTURING, Role.ADMIN, site_param="site", any_site=(Role.ADMIN,))
_CALENDAR_READERS = policy(
    Role.MANUFACTURING, Role.QA, Role.COORDINATOR, Role.ADMIN, site_param="site", any_site=(Role.ADMIN,)
)
_SLOT_KEEPERS = policy(
    Role.COORDINATOR, Role.PHARMACIST, Role.ADMIN, site_param="site", any_site=(Role.ADMIN,)
)
ProductCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{1,40}$", examples=["car-t"])]
Days = Annotated[int, QueryParameter(ge=1, le=capacity.MAX_DAYS)]


class OrderCreate(Command):
    product: ProductCode
    collection_site: SiteCode
    manufacturing_site: SiteCode
    mdt_reference: Name
    mdt_date: date
    physician: Name


class OrderDecision(Command):
    decision: Literal["accept", "decline"]
    password: Password
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class ProductLimitsSet(Command):
    """A product's limits (docs/planning.md); the bounds are the database's own."""

    thaw_to_infusion_min: Annotated[int, msgspec.Meta(ge=5, le=1440)]
    storage_min_c: Annotated[int, msgspec.Meta(ge=-200, le=40)]
    storage_max_c: Annotated[int, msgspec.Meta(ge=-200, le=40)]
    shelf_life_days: Annotated[int, msgspec.Meta(ge=1, le=3650)]
    reason: Reason


class BookingCreate(Command):
    slot_id: Annotated[int, msgspec.Meta(ge=1)]


class BookingMove(Command):
    slot_id: Annotated[int, msgspec.Meta(ge=1)]
    reason: Reason


class BookingCancel(Command):
    reason: Reason


class CapacitySet(Command):
    runs_per_day: Annotated[int, msgspec.Meta(ge=0, le=100)]
    suites: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=40)]], msgspec.Meta(max_length=50)
    ]


class BlackoutAdd(Command):
    day: date
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]


class SlotAdd(Command):
    # A time without an offset is the collection site's local time.
    starts_at: datetime
    minutes: Annotated[int, msgspec.Meta(ge=15, le=1440)] = 240


class SlotsAdd(Command):
    slots: Annotated[list[SlotAdd], msgspec.Meta(min_length=1, max_length=capacity.MAX_SLOTS)]


class SlotsRead(msgspec.Struct, kw_only=True):
    site: str
    time_zone: str
    slots: list[SlotRead]


class ChoicesRead(msgspec.Struct, kw_only=True):
    coi: str
    time_zone: str
    slots: list[bookings.SlotChoice]


def _today() -> date:
    return datetime.now(UTC).date()


def _day(value: date | None, field: str = "start") -> date:
    """A planning date: from 2000 to 2100, so that a calendar's days and a run's end stay dates."""
    day = value or _today()
    if not 2000 <= day.year <= 2100:
        raise InvalidInput(
            f"{field} must be a date between 2000 and 2100", field_errors={field: "out of range"}
        )
    return day


class PlanningController(Controller):
    path = "/api/v1"
    tags = ("planning",)

    @get("/planning/products", opt=policy(*PEOPLE), operation_id="listPlanningProducts")
    async def products(self, pool: NamedDependency[Pool]) -> list[catalogue.CatalogueProduct]:
        """The product catalogue: lead times (hours between milestones, manufacturing days, slack) and
        the limits a product bag is held to (thaw-to-infusion window, storage range, shelf life)."""
        return await catalogue.catalogue(pool)

    @put(
        "/planning/products/{product:str}/limits",
        opt=policy(Role.QA, Role.ADMIN),
        operation_id="setProductLimits",
    )
    async def set_product_limits(
        self,
        product: FromPath[str],
        data: JSONBody[ProductLimitsSet],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ProductLimitsRead:
        """Change a product's limits, with the reason: QA of a site that makes the product (manufacturing
        capacity declared for it) or an administrator. Units already registered keep their expiry; the
        thaw window applies from the next infusion."""
        change = catalogue.LimitsChange(
            thaw_to_infusion_min=data.thaw_to_infusion_min,
            storage_min_c=data.storage_min_c,
            storage_max_c=data.storage_max_c,
            shelf_life_days=data.shelf_life_days,
            reason=data.reason,
        )
        return read(await catalogue.set_limits(pool, principal, product, change), ProductLimitsRead)

    @get("/orders", opt=policy(*PLANNERS), operation_id="listTreatmentOrders")
    async def list_orders(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[OrderRead]:
        """Orders of the caller's sites: placed by them, collected or manufactured there."""
        return reads(await listing.orders_for(pool, principal, limit), OrderRead)

    @post("/cases/{coi:str}/order", opt=policy(Role.COORDINATOR), operation_id="createTreatmentOrder")
    async def create_order(
        self,
        coi: FromPath[str],
        data: JSONBody[OrderCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> OrderRead:
        """The treating site orders a therapy: product, manufacturing and collection sites, the
        multidisciplinary team decision (reference and date) and the treating physician."""
        if not 1990 <= data.mdt_date.year <= 2100:
            raise InvalidInput("mdt_date is not a plausible date", field_errors={"mdt_date": "out of range"})
        created = await orders.create_order(
            pool,
            principal,
            coi,
            product=data.product,
            collection_site=data.collection_site,
            manufacturing_site=data.manufacturing_site,
            mdt_reference=data.mdt_reference,
            mdt_date=data.mdt_date,
            physician=data.physician,
        )
        return read(created, OrderRead)

    @post(
        "/cases/{coi:str}/order/decision", opt=policy(Role.MANUFACTURING), operation_id="decideTreatmentOrder"
    )
    async def decide_order(
        self,
        coi: FromPath[str],
        data: JSONBody[OrderDecision],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> OrderRead:
        """The manufacturing site accepts or declines, signing with its password (meaning "order
        accepted" or "order declined"); the signed decision is a custody event of the case."""
        decided = await orders.decide(
            pool, principal, coi, accept=data.decision == "accept", password=data.password, reason=data.reason
        )
        return read(decided, OrderRead)

    @post(
        "/cases/{coi:str}/order/withdraw", opt=policy(Role.COORDINATOR), operation_id="withdrawTreatmentOrder"
    )
    async def withdraw_order(
        self,
        coi: FromPath[str],
        data: JSONBody[BookingCancel],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> OrderRead:
        """The treatment site withdraws its order; a booking it holds is cancelled and its capacity freed."""
        return read(await orders.withdraw(pool, principal, coi, data.reason), OrderRead)

    @get("/cases/{coi:str}/plan", opt=policy(*PEOPLE), operation_id="getCasePlan")
    async def get_plan(
        self, coi: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> bookings.Plan:
        """The order, the booking and each milestone planned against the custody record."""
        return await bookings.plan(pool, principal, coi)

    @get("/cases/{coi:str}/slots", opt=policy(Role.COORDINATOR), operation_id="caseSlotChoices")
    async def slot_choices(
        self,
        coi: FromPath[str],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        start: FromQuery[date | None] = None,
        days: Days = 28,
    ) -> ChoicesRead:
        """Free apheresis slots of the order's collection site, each saying whether its manufacturing run
        fits the manufacturing site's capacity now."""
        zone, found = await bookings.choices(pool, principal, coi, _day(start), days)
        return ChoicesRead(coi=coi, time_zone=zone, slots=found)

    @post("/cases/{coi:str}/booking", opt=policy(Role.COORDINATOR), operation_id="bookCollection")
    async def book(
        self,
        coi: FromPath[str],
        data: JSONBody[BookingCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> BookingRead:
        """Book a collection slot; reserves the matching manufacturing run (409 when none is free)."""
        return read(await bookings.book(pool, principal, coi, data.slot_id), BookingRead)

    @post(
        "/cases/{coi:str}/booking/reschedule",
        opt=policy(Role.COORDINATOR),
        operation_id="rescheduleCollection",
    )
    async def reschedule(
        self,
        coi: FromPath[str],
        data: JSONBody[BookingMove],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> BookingRead:
        moved = await bookings.reschedule(pool, principal, coi, data.slot_id, data.reason)
        return read(moved, BookingRead)

    @post("/cases/{coi:str}/booking/cancel", opt=policy(Role.COORDINATOR), operation_id="cancelCollection")
    async def cancel(
        self,
        coi: FromPath[str],
        data: JSONBody[BookingCancel],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> BookingRead:
        return read(await bookings.cancel(pool, principal, coi, data.reason), BookingRead)

    @get("/sites/{site:str}/calendar", opt=_CALENDAR_READERS, operation_id="capacityCalendar")
    async def calendar(
        self,
        site: FromPath[str],
        pool: NamedDependency[Pool],
        start: FromQuery[date | None] = None,
        days: Days = 7,
    ) -> capacity.Calendar:
        """Booked and free suites per day, runs booked per product, blackout days, flagged bookings."""
        return await capacity.calendar(pool, site, _day(start), days)

    @put("/sites/{site:str}/capacity/{product:str}", opt=_MANUFACTURING_SITE, operation_id="setCapacity")
    async def set_capacity(
        self,
        site: FromPath[str],
        product: FromPath[str],
        data: JSONBody[CapacitySet],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> list[CapacityRead]:
        """Runs per day and suites for one product; bookings that no longer fit are flagged, not cancelled."""
        rows = await capacity.set_capacity(pool, principal, site, product, data.runs_per_day, data.suites)
        return reads(rows, CapacityRead)

    @post("/sites/{site:str}/blackouts", opt=_MANUFACTURING_SITE, operation_id="addBlackout", status_code=204)
    async def add_blackout(
        self,
        site: FromPath[str],
        data: JSONBody[BlackoutAdd],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        await capacity.set_blackout(pool, principal, site, _day(data.day, "day"), data.reason)

    @delete("/sites/{site:str}/blackouts/{day:str}", opt=_MANUFACTURING_SITE, operation_id="removeBlackout")
    async def remove_blackout(
        self,
        site: FromPath[str],
        day: FromPath[str],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise InvalidInput(f"{day!r} is not a date (YYYY-MM-DD)") from None
        await capacity.set_blackout(pool, principal, site, _day(when, "day"), None, remove=True)

    @get("/sites/{site:str}/slots", opt=_SLOT_KEEPERS, operation_id="listCollectionSlots")
    async def list_slots(
        self,
        site: FromPath[str],
        pool: NamedDependency[Pool],
        start: FromQuery[date | None] = None,
        days: Days = 14,
    ) -> SlotsRead:
        zone, found = await capacity.list_slots(pool, site, _day(start), days)
        return SlotsRead(site=site, time_zone=zone, slots=reads(found, SlotRead))

    @post("/sites/{site:str}/slots", opt=_SLOT_KEEPERS, operation_id="addCollectionSlots")
    async def add_slots(
        self,
        site: FromPath[str],
        data: JSONBody[SlotsAdd],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> list[SlotRead]:
        """Declare apheresis slots; a slot already declared at the same start is left as it is."""
        for slot in data.slots:
            _day(slot.starts_at.date(), "starts_at")
        wanted = [capacity.SlotIn(s.starts_at, s.minutes) for s in data.slots]
        return reads(await capacity.add_slots(pool, principal, site, wanted), SlotRead)


class KpisController(Controller):
    path = "/api/v1"
    tags = ("kpis",)

    @get("/kpis", opt=policy(*PLANNERS), operation_id="getKpis")
    async def get_kpis(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        site: FromQuery[str | None] = None,
    ) -> kpis.Kpis:
        """Vein-to-vein time, manufacturing turnaround, legs against plan, lanes' on-time rate,
        excursions and refusals: of the records the caller may see, optionally of one site."""
        return await kpis.kpis(pool, principal, site or None)

    @get("/kpis.csv", opt=policy(*PLANNERS), operation_id="getKpisCsv")
    async def kpis_csv(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        site: FromQuery[str | None] = None,
    ) -> Response[str]:
        figures = await kpis.kpis(pool, principal, site or None)
        return Response(
            kpis.to_csv(figures),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="celltrail-kpis.csv"'},
        )


ROUTES: tuple[Any, ...] = (PlanningController, KpisController)
