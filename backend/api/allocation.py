"""Allogeneic (off-the-shelf) products: registering a batch, opening a recipient's case, allocating a
bag of the batch to a recipient at dispense and withdrawing that allocation, and what a bedside scanner
keeps for comparing offline (backend/services/allocation.py, allocation_withdraw.py;
docs/product-kinds.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from backend.api.cases import case_read, unit_read
from backend.api.custody_schemas import CaseRead, UnitRead
from backend.api.errors import Problem
from backend.api.schemas import NAME_MAX, Command, Password, Reason, SiteCode
from backend.db.types import Pool
from backend.domain.access import RECORD_READERS, Principal, Role, policy
from backend.services import allocation, allocation_withdraw
from backend.services.allocation_withdraw import BedsideBook
from backend.settings import Settings

# A batch's and its source's identifiers as the manufacturer's batch record and donor or cell-line
# registry write them (the database's CHECK holds the same pattern).
BatchCode = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$", examples=["iPSC-DA-2026-007"])
]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class BatchCreate(Command):
    batch_id: BatchCode
    source_kind: Literal["donor", "cell_line"]
    source_id: BatchCode
    product: Text
    site: SiteCode
    units: Annotated[int, msgspec.Meta(ge=1, le=99)]
    expires_at: datetime | None = None


class BatchRead(msgspec.Struct, kw_only=True):
    coi: str
    batch_id: str
    source_kind: str
    source_id: str
    product: str
    site: str
    units: list[UnitRead]


class RecipientCreate(Command):
    treatment_site: SiteCode
    therapy: Text
    patient_ref: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    birth_year: Annotated[int, msgspec.Meta(ge=1900, le=2100)] | None = None


class AllocationCreate(Command):
    site: SiteCode
    # The bag as scanned: its unit id (`<batch COI>-PRC-01`) or DIN.
    unit: Code
    # The recipient's case: its COI as printed on the wristband (with or without `&/`).
    recipient: Code
    password: Password


class WithdrawalCreate(Command):
    site: SiteCode
    # The bag as scanned (unit id or DIN) and the recipient whose allocation is withdrawn (their COI).
    unit: Code
    recipient: Code
    reason: Reason
    password: Password


_REFUSALS: dict[int, ResponseSpec] = {
    404: ResponseSpec(Problem, description="no such bag or case (or one of a site you are not bound to)"),
    409: ResponseSpec(Problem, description="refused: the problem names why"),
}


@post(
    "/api/v1/allogeneic/batches",
    opt=policy(Role.MANUFACTURING),
    operation_id="registerAllogeneicBatch",
    tags=["cases"],
    responses={409: ResponseSpec(Problem, description="batch id already registered")},
)
async def register_batch(
    data: JSONBody[BatchCreate],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    settings: NamedDependency[Settings],
) -> BatchRead:
    """Register a manufactured batch at your site: a case whose COI identifies the batch, with `units`
    product bags, each recording the batch and its source (donor or cell line)."""
    return _batch_read(
        await allocation.register_batch(
            pool,
            principal,
            batch_id=data.batch_id,
            source=(data.source_kind, data.source_id),
            product=data.product,
            site=data.site,
            units=data.units,
            expires_at=data.expires_at,
            fin=settings.fin,
        )
    )


@get(
    "/api/v1/cases/{coi:str}/allocations",
    opt=policy(*RECORD_READERS),
    operation_id="caseAllocations",
    tags=["cases"],
)
async def case_allocations(
    coi: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
) -> allocation.CaseAllocations:
    """A case's part in allogeneic products: for a batch, its source and the recipient each allocated
    bag is for; for a recipient, the bags allocated to them and their batches; nothing for an
    autologous case."""
    return await allocation.of_case(pool, principal, coi)


def _batch_read(made: allocation.Batch) -> BatchRead:
    batch = made.batch
    return BatchRead(
        coi=batch.coi,
        batch_id=batch.batch_id,
        source_kind=batch.source_kind,
        source_id=batch.source_id,
        product=batch.product,
        site=batch.site,
        units=[unit_read(u) for u in made.units],
    )


@post(
    "/api/v1/allogeneic/recipients",
    opt=policy(Role.COORDINATOR),
    operation_id="openAllogeneicRecipient",
    tags=["cases"],
)
async def open_recipient(
    data: JSONBody[RecipientCreate],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    settings: NamedDependency[Settings],
) -> CaseRead:
    """Open a recipient's case at your hospital: its own COI (the wristband's), no starting material; its
    product is a bag of a batch, allocated at dispense."""
    case = await allocation.open_recipient(
        pool,
        principal,
        treatment_site=data.treatment_site,
        therapy=data.therapy,
        patient_ref=data.patient_ref,
        birth_year=data.birth_year,
        fin=settings.fin,
    )
    return case_read(case, principal)


@post(
    "/api/v1/allogeneic/allocations",
    opt=policy(Role.PHARMACIST),
    operation_id="allocateAllogeneicUnit",
    tags=["scans"],
    responses=_REFUSALS,
)
async def allocate_unit(
    data: JSONBody[AllocationCreate], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
) -> allocation.Allocated:
    """Allocate one stored bag of a batch to one recipient's case of your site, signed with your password
    ('allocated to recipient'). Recorded on the batch's chain and the recipient's. A bag is allocated
    once: a second allocation is refused (409)."""
    return await allocation.allocate(
        pool,
        principal,
        site=data.site,
        unit_code=data.unit,
        recipient=data.recipient,
        password=data.password,
    )


@post(
    "/api/v1/allogeneic/withdrawals",
    opt=policy(Role.PHARMACIST),
    operation_id="withdrawAllogeneicAllocation",
    tags=["scans"],
    responses=_REFUSALS,
)
async def withdraw_allocation(
    data: JSONBody[WithdrawalCreate], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
) -> allocation_withdraw.Withdrawn:
    """Withdraw the allocation of a bag to a recipient (they cannot receive it, the bag is damaged...)
    before the bag is thawed, signed with your password ('allocation withdrawn') and the reason, at the
    site that allocates for the recipient. Recorded on the batch's chain and the recipient's; the bag may
    be allocated again, and the bedside stops it for the former recipient."""
    return await allocation_withdraw.withdraw(
        pool,
        principal,
        site=data.site,
        unit_code=data.unit,
        recipient=data.recipient,
        reason=data.reason,
        password=data.password,
    )


@get(
    "/api/v1/allogeneic/bedside-book",
    opt=policy(Role.PHARMACIST),
    operation_id="allogeneicBedsideBook",
    tags=["scans"],
    responses={403: ResponseSpec(Problem, description="you are not assigned to that site")},
)
async def bedside_book(
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    site: Annotated[str, QueryParameter(pattern=r"^[A-Z0-9][A-Z0-9_-]{1,31}$")],
) -> BedsideBook:
    """What a bedside scanner at your site keeps for comparing a bag with a wristband while offline: the
    batches with a bag at the site and each live allocation of one of their bags to a recipient treated
    there, with whether it is fixed (the bag thawed: no longer withdrawn)."""
    return await allocation_withdraw.bedside_book(pool, principal, site)


ROUTES: tuple[Any, ...] = (
    register_batch,
    case_allocations,
    open_recipient,
    allocate_unit,
    withdraw_allocation,
    bedside_book,
)
