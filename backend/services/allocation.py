"""Allogeneic (off-the-shelf) products: a batch registered by manufacturing, recipients opened by the
hospital, and the pharmacist's signed allocation of one bag of the batch to one recipient at dispense.

The batch is a case of its own (its COI identifies the batch; its bags are its units), so labels, QA
release, shipments, receipt, storage and the custody steps work on it as on any case. What ties a bag to
its patient is the allocation: an `allocate` event on the batch's chain, signed, naming the recipient,
an `allocated` event on the recipient's chain naming the bag, and a row that refuses a second allocation
of the same bag. Every step towards a patient (dispense, thaw, infusion, bedside check) then compares the
wristband with the bag's recipient (`backend.domain.allogeneic`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec

from backend.db.repo import allocations, cases
from backend.db.repo.allocations import BatchRow
from backend.db.repo.cases import CaseRow, UnitRow
from backend.db.types import Conn, Pool
from backend.domain.access import Principal
from backend.domain.allogeneic import NEEDS_ALLOCATION, patient_units
from backend.domain.custody import Action, Refusal, UnitState, check_open
from backend.domain.errors import Conflict, InvalidInput, PermissionDenied
from backend.services import chain as chains
from backend.services import objects, outbox_events
from backend.services.allocation_pair import Signed, lock_pair, recipient_coi, record_pair, sign
from backend.services.case_opening import NewCase, open_case
from celltrail_shared.identifiers import (
    Coi,
    IdentifierError,
    UnitId,
    UnitKind,
    parse_coi,
)

BATCH, RECIPIENT = "allogeneic_batch", "allogeneic_recipient"
ALLOCATE, ALLOCATED = "allocate", "allocated"
CASE_COMPLETED = "case_completed"  # replayed as the case completed (backend/domain/replay.py)
MEANING = "allocated to recipient"


class Batch(msgspec.Struct, frozen=True):
    batch: BatchRow
    units: list[UnitRow]


class Allocated(msgspec.Struct, frozen=True):
    unit_id: str
    batch_coi: str
    batch_id: str
    recipient_coi: str
    event_ids: list[int]
    server_time: datetime


async def register_batch(
    pool: Pool,
    actor: Principal,
    *,
    batch_id: str,
    source: tuple[str, str],
    product: str,
    site: str,
    units: int,
    expires_at: datetime | None,
    fin: str,
) -> Batch:
    """Manufacturing registers a batch at its site: a case of kind `allogeneic_batch` whose COI identifies
    the batch, and `units` product bags (`<COI>-PRC-01` ...), each registered on the batch's chain with
    the batch and its source (donor or cell line)."""
    if not actor.at_site(site):
        raise PermissionDenied(f"you are not assigned to site {site}")
    async with pool.acquire() as conn, conn.transaction():
        if await allocations.batch_id_taken(conn, batch_id):
            raise Conflict(f"batch {batch_id} is already registered", field_errors={"batch_id": "taken"})
        new = NewCase(treatment_site=site, therapy=product, fin=fin, product_kind=BATCH, site_field="site")
        coi = await open_case(conn, actor, new)
        await allocations.insert_batch(conn, coi, batch_id, source, product, site, units, actor.user_id)
        chain = await chains.lock(conn, coi)
        origin = {"batch_id": batch_id, "source_kind": source[0], "source_id": source[1]}
        for number in range(1, units + 1):
            unit = UnitId(coi=Coi.from_value(coi), kind=UnitKind("PRC"), number=number).text
            await cases.insert_unit(
                conn, unit, coi, "PRC", None, product, expires_at, site, (None, batch_id, None)
            )
            await chains.append(
                conn,
                chain,
                action="unit_registered",
                actor=actor,
                site=site,
                detail=f"registered {unit} ({product}) of batch {batch_id}",
                unit_ids=[unit],
                data={
                    "kind": "PRC",
                    "product": product,
                    "din": None,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                    **origin,
                },
            )
        await outbox_events.announce(conn, "case", [site], coi, {"coi": coi, "status": "open", **origin})
        batch = await allocations.get_batch(conn, coi)
        bags = await cases.units_of_case(conn, coi)
    assert batch is not None
    return Batch(batch, bags)


class CaseAllocations(msgspec.Struct, frozen=True):
    coi: str
    product_kind: str
    batch: BatchRow | None
    # a batch: unit -> the recipient's COI; a recipient: unit -> the batch's COI; otherwise empty
    allocations: dict[str, str]


async def of_case(pool: Pool, principal: Principal, coi_text: str) -> CaseAllocations:
    """What a case has to do with allocation: a batch's source and whom each allocated bag is for, or a
    recipient's bags and the batches they came from; nothing for an autologous case."""
    try:
        coi = parse_coi(coi_text).value
    except IdentifierError as exc:
        raise InvalidInput(str(exc), field_errors={"coi": exc.reason}) from None
    async with pool.acquire() as conn:
        case = await objects.case(conn, principal, coi)
        kind = await allocations.product_kind(conn, case.coi) or "autologous"
        batch = await allocations.get_batch(conn, case.coi) if kind == BATCH else None
        if kind == BATCH:
            found = await allocations.of_batch(conn, case.coi)
        else:
            found = await allocations.of_recipient(conn, case.coi) if kind == RECIPIENT else {}
    return CaseAllocations(case.coi, kind, batch, found)


async def open_recipient(
    pool: Pool,
    actor: Principal,
    *,
    treatment_site: str,
    therapy: str,
    patient_ref: str | None,
    birth_year: int | None,
    fin: str,
) -> CaseRow:
    """The hospital opens a recipient's case (kind `allogeneic_recipient`): a treatment case with its
    own COI (the wristband's) and no starting material; its product comes from a batch by allocation."""
    if not actor.at_site(treatment_site):
        raise PermissionDenied(f"you are not assigned to site {treatment_site}")
    async with pool.acquire() as conn, conn.transaction():
        new = NewCase(
            treatment_site=treatment_site,
            therapy=therapy,
            fin=fin,
            patient_ref=patient_ref,
            birth_year=birth_year,
            product_kind=RECIPIENT,
            site_field="site",
        )
        coi = await open_case(conn, actor, new)
        await outbox_events.announce(conn, "case", [treatment_site], coi, {"coi": coi, "status": "open"})
        created = await cases.get_case(conn, coi)
    assert created is not None
    return created


async def allocate(
    pool: Pool, actor: Principal, *, site: str, unit_code: str, recipient: str, password: str
) -> Allocated:
    """The pharmacist allocates one bag of a batch, stored at their site, to one recipient's case of that
    site, signing it ('allocated to recipient'). A bag is allocated at most once."""
    target_coi = recipient_coi(recipient)
    async with pool.acquire() as conn, conn.transaction():
        pair = await lock_pair(conn, actor, unit_code, target_coi, site)
        unit, target = pair.unit, pair.target
        batch = await allocations.get_batch(conn, unit.coi)
        if batch is None:
            raise Conflict(
                f"{unit.id} is not a bag of an allogeneic batch: an autologous product is for its own "
                "patient only and is not allocated",
                field_errors={"unit": "not allogeneic"},
            )
        await _check(conn, unit, target, site)
        at = chains.now()
        signature = await sign(conn, actor, password, MEANING, at, site)
        origin = {"batch_id": batch.batch_id, "source_kind": batch.source_kind, "source_id": batch.source_id}
        first, second = await record_pair(
            conn,
            pair,
            Signed(actor, site, signature, at),
            (ALLOCATE, f"{unit.id} of batch {batch.batch_id} allocated to case {target.coi}"),
            {"recipient_coi": target.coi, **origin},
            (ALLOCATED, f"allocated {unit.id} of batch {batch.batch_id} ({batch.product})"),
            {"unit_id": unit.id, "batch_coi": unit.coi, **origin},
        )
        if not await allocations.insert_allocation(
            conn, unit.id, unit.coi, target.coi, first.event_id, actor.user_id
        ):
            raise Conflict(f"{unit.id} is already allocated", field_errors={"unit": "allocated"})
    return Allocated(unit.id, unit.coi, batch.batch_id, target.coi, [first.event_id, second.event_id], at)


async def _check(conn: Conn, unit: UnitRow, target: CaseRow, site: str) -> None:
    """Refusals of an allocation, each a 409 naming what is wrong."""
    existing = (await allocations.of_units(conn, [unit.id])).get(unit.id)
    if existing is not None and existing.recipient is not None:
        raise Conflict(
            f"{unit.id} is already allocated to case {existing.recipient}: a bag has one recipient at a "
            "time; withdraw that allocation first (POST /api/v1/allogeneic/withdrawals)",
            field_errors={"unit": "allocated"},
        )
    if await allocations.recorded_live(conn, unit.coi, unit.id) > 0:
        # The row says the bag is free, its chain that it is allocated: the row was changed behind the
        # record's back; allocating it again would give one bag to two patients.
        raise Conflict(
            f"STOP — {unit.id} is allocated according to its signed record but not in the database: "
            "it is not allocated again; QA investigates",
            field_errors={"unit": "record mismatch"},
        )
    if await allocations.product_kind(conn, target.coi) != RECIPIENT:
        raise Conflict(
            f"case {target.coi} is not an allogeneic recipient's case: open the recipient's case as one "
            "(POST /api/v1/allogeneic/recipients)",
            field_errors={"recipient": "not a recipient"},
        )
    if target.treatment_site != site:
        raise Conflict(f"case {target.coi} is treated at {target.treatment_site}, not at {site}")
    for status in (target.status, (await cases.get_case(conn, unit.coi) or target).status):
        try:
            check_open(status, "allocation")
        except Refusal as refusal:
            raise Conflict(refusal.detail) from None
    problem = _unit_problem(unit, site)
    if problem is not None:
        raise Conflict(problem, field_errors={"unit": "not allocatable"})


def _unit_problem(unit: UnitRow, site: str) -> str | None:
    if unit.site != site:
        return f"{unit.id} is at {unit.site or 'no site (in transit)'}, not at {site}"
    if unit.status != "stored":
        return f"{unit.id} is {unit.status.replace('_', ' ')}: a bag is allocated from storage at dispense"
    if unit.quarantined:
        return f"{unit.id} is quarantined: it is not allocated until QA decides"
    if not unit.released:
        return f"{unit.id} has no QA release"
    if unit.expires_at is not None and chains.now() >= unit.expires_at:
        return f"{unit.id} expired at {unit.expires_at.isoformat()}"
    return None


async def involved(conn: Conn, unit_ids: list[str], cois: set[str], wristband: str | None) -> set[str]:
    """The cases a scan's chain-of-identity mismatch concerns: the scanned units' and the wristband's,
    and, when a wristband was scanned with bags of a batch, the recipients those bags are allocated to
    (their bag at another patient's side). Without a wristband nothing more is read."""
    if wristband is None:
        return cois
    found = await allocations.of_units(conn, unit_ids)
    return cois | {wristband} | {a.recipient for a in found.values() if a.allogeneic and a.recipient}


class _Scanned(Protocol):
    @property
    def cois(self) -> list[str]: ...


async def seen(conn: Conn, action: Action, units: list[UnitState], scanned: _Scanned) -> list[UnitState]:
    """The scan's hook: the units as the state machine compares them with a patient (a bag of a batch
    takes its recipient's COI when a wristband is scanned with it), refusing a bag allocated to nobody in
    a step towards a patient. Steps that neither go towards a patient nor name one read nothing more."""
    if not units or (action not in NEEDS_ALLOCATION and not scanned.cois):
        return units
    found = await allocations.of_units(conn, [u.id for u in units])
    return patient_units(action, units, found, scanned.cois[0] if scanned.cois else None)


async def complete_recipients(conn: Conn, actor: Principal, site: str, unit_ids: list[str]) -> list[str]:
    """After an infusion or disposal of `unit_ids` (bags of a batch), in the scan's transaction: the
    recipients' cases these bags are allocated to are completed once a bag allocated to them was infused
    and none is left to give, as an autologous case is when its own bags are (`cases.complete_if_done`).
    Each is recorded on the recipient's chain (`case_completed`) and announced; their COIs returned."""
    completed = await allocations.complete_recipients(conn, unit_ids)
    for coi, treatment_site, infused in completed:
        await chains.append(
            conn,
            await chains.lock(conn, coi),
            action=CASE_COMPLETED,
            actor=actor,
            site=site,
            detail=f"case completed: {', '.join(infused)} infused",
            data={"infused": infused},
        )
        await outbox_events.announce(conn, "case", [treatment_site], coi, {"coi": coi, "status": "completed"})
    return [coi for coi, _site, _infused in completed]
