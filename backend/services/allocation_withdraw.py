"""Withdrawing an allocation, and what a bedside scanner keeps of the allocations for working offline.

A pharmacist of the site that allocated a bag withdraws its allocation when the recipient cannot receive
it or the bag is damaged, signing it ('allocation withdrawn') with the reason, before the bag is thawed.
The withdrawal is a `withdraw_allocation` event on the batch's chain (naming the allocating event) and an
`allocation_withdrawn` event on the recipient's; the allocation row is marked withdrawn (the database
lets nothing else change it), the bag may be allocated again, and every step towards a patient, the
bedside check included, then finds the bag allocated to nobody: a STOP for the former recipient."""

from __future__ import annotations

from datetime import datetime

import msgspec

from backend.db.repo import allocations, audit
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.domain.allogeneic import FIXED_STATES, withdrawal_problem
from backend.domain.custody import FINAL_UNIT_STATES
from backend.domain.errors import Conflict, InvalidInput, PermissionDenied
from backend.services import chain as chains
from backend.services.allocation_pair import Signed, lock_pair, recipient_coi, record_pair, sign

WITHDRAW, WITHDRAWN = "withdraw_allocation", "allocation_withdrawn"
MEANING = "allocation withdrawn"


class Withdrawn(msgspec.Struct, frozen=True):
    unit_id: str
    batch_coi: str
    recipient_coi: str
    reason: str
    event_ids: list[int]
    server_time: datetime


async def withdraw(
    pool: Pool,
    actor: Principal,
    *,
    site: str,
    unit_code: str,
    recipient: str,
    reason: str,
    password: str,
) -> Withdrawn:
    """Withdraw the live allocation of a bag to `recipient` (named, so that the wrong allocation is not
    withdrawn by a slip), signed with the caller's password and the reason."""
    target_coi = recipient_coi(recipient)
    if not reason.strip():
        raise InvalidInput("give the reason for the withdrawal", field_errors={"reason": "required"})
    async with pool.acquire() as conn, conn.transaction():
        pair = await lock_pair(conn, actor, unit_code, target_coi, site)
        unit, target = pair.unit, pair.target
        live = await allocations.live(conn, unit.id)
        if live is None or live.recipient_coi != target.coi:
            now = f"allocated to case {live.recipient_coi}" if live else "allocated to nobody"
            raise Conflict(
                f"{unit.id} is not allocated to case {target.coi} ({now}): nothing to withdraw",
                field_errors={"recipient": "not allocated"},
            )
        if target.treatment_site != site:
            raise Conflict(
                f"case {target.coi} is treated at {target.treatment_site}: an allocation is withdrawn by "
                "the site that allocates for it"
            )
        problem = withdrawal_problem(unit.id, unit.status)
        if problem is not None:
            raise Conflict(problem, field_errors={"unit": "not withdrawable"})
        at = chains.now()
        signature = await sign(conn, actor, password, MEANING, at, site)
        first, second = await record_pair(
            conn,
            pair,
            Signed(actor, site, signature, at),
            (WITHDRAW, f"allocation of {unit.id} to case {target.coi} withdrawn: {reason}"),
            {"recipient_coi": target.coi, "allocation_event_id": live.event_id, "reason": reason},
            (WITHDRAWN, f"allocation of {unit.id} withdrawn: {reason}"),
            {"unit_id": unit.id, "batch_coi": unit.coi, "reason": reason},
        )
        if not await allocations.mark_withdrawn(conn, unit.id, first.event_id, actor.user_id, at):
            raise Conflict(f"{unit.id} is no longer allocated", field_errors={"unit": "not allocated"})
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="withdraw",
            entity="allocation",
            entity_id=unit.id,
            new_value={"recipient_coi": target.coi, "reason": reason, "event_id": first.event_id},
        )
    return Withdrawn(unit.id, unit.coi, target.coi, reason, [first.event_id, second.event_id], at)


class BookAllocation(msgspec.Struct, frozen=True):
    recipient_coi: str
    # Thawed (or further): the allocation can no longer be withdrawn, so it holds however long ago it
    # was read.
    fixed: bool


class BedsideBook(msgspec.Struct, frozen=True):
    site: str
    batches: list[str]
    allocations: dict[str, BookAllocation]
    as_of: datetime


async def bedside_book(pool: Pool, actor: Principal, site: str) -> BedsideBook:
    """What a bedside scanner at `site` needs to compare a bag of a batch with a wristband while offline:
    the batches with a bag at the site and the live allocations to the site's recipients."""
    if not actor.at_site(site):
        raise PermissionDenied(f"you are not assigned to site {site}")
    async with pool.acquire() as conn:
        batches, entries = await allocations.bedside_book(conn, [site])
    # An infused or disposed bag is given to nobody any more: left out, it is not compared offline.
    given = {e.unit_id: e for e in entries if e.unit_status not in FINAL_UNIT_STATES}
    book = {u: BookAllocation(e.recipient_coi, e.unit_status in FIXED_STATES) for u, e in given.items()}
    return BedsideBook(site, batches, book, chains.now())
