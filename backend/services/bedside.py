"""Bedside verification: the patient's wristband and the bag, compared by the server before an infusion.

A MATCH records nothing (the infusion itself is the record, signed by two people). A STOP is a refused
step: it is written as a refusal into the chain of every case involved — the wristband's and the bag's,
which differ when the bag belongs to another patient — and raises a critical alert for each, as the same
mismatch at the receipt desk does. Both codes pass the object gate first: a case or bag of a site the
nurse is not bound to answers exactly like one that does not exist, and nothing is written for it."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

import asyncpg
import msgspec

from backend.db.repo import allocations, cases, events
from backend.db.repo.cases import CaseRow, UnitRow
from backend.db.types import Conn, Pool
from backend.domain.access import Principal
from backend.domain.allogeneic import Allocation, closed_detail, not_allocated_detail, tampered_detail
from backend.domain.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from backend.services import alerting, objects, outbox_events
from backend.services import chain as chains
from celltrail_shared.identifiers import Coi, Din, IdentifierError, UnitId, parse_identifier

log = logging.getLogger(__name__)

ACTION: Final = "bedside_verify"
INFUSABLE: Final = "thawed"


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    idempotency_key: str
    site: str
    wristband: str
    bag: str
    device_time: datetime | None = None


class Verdict(msgspec.Struct, frozen=True):
    """`refusal` is None for a MATCH; a STOP names the refusal and the events that record it."""

    match: bool
    detail: str
    coi: str
    unit_id: str
    refusal: str | None = None
    event_ids: list[int] = []
    cois: list[str] = []


class _Stop(msgspec.Struct, frozen=True):
    code: str
    title: str
    detail: str


def _wristband_coi(text: str) -> str:
    try:
        identifier = parse_identifier(text)
    except IdentifierError as exc:
        raise InvalidInput(f"the wristband code could not be read: {exc.reason}") from exc
    if not isinstance(identifier, Coi):
        raise InvalidInput("the first code must be the patient's wristband, not a bag, box or other label")
    return identifier.value


async def _bag(conn: Conn, actor: Principal, text: str) -> tuple[UnitRow, CaseRow]:
    try:
        identifier = parse_identifier(text)
    except IdentifierError as exc:
        raise InvalidInput(f"the bag code could not be read: {exc.reason}") from exc
    if isinstance(identifier, UnitId):
        return await objects.unit(conn, actor, identifier.text)
    if isinstance(identifier, Din):
        found = await cases.lock_visible_units(conn, [], [identifier.barcode], None)
        try:
            if not found:
                raise NotFound("no such unit")
            return await objects.unit(conn, actor, found[0].id)
        except NotFound:
            # Worded the same whether the DIN exists elsewhere or nowhere.
            raise NotFound(f"no unit with DIN {identifier.eye_readable}") from None
    raise InvalidInput("the second code must be the bag's label (its unit id, DIN or QR code)")


def _allocation_stop(case: CaseRow, unit: UnitRow, allocation: Allocation | None) -> _Stop | None:
    """A bag of an allogeneic batch carries the batch's COI: its patient is the recipient it was
    allocated to at dispense, and the wristband must be that recipient's."""
    if allocation is None or not allocation.allogeneic:
        return None
    if allocation.tampered:
        return _Stop(
            "record_mismatch",
            "Bedside check: allocation differs from its record",
            tampered_detail(allocation),
        )
    if allocation.recipient is None:
        return _Stop(
            "not_allocated",
            "Bedside check: bag allocated to no recipient",
            not_allocated_detail(unit.id, unit.coi),
        )
    if allocation.recipient != case.coi:
        return _Stop(
            "coi_mismatch",
            "Bedside check: wristband and bag of different patients",
            f"STOP — bag {unit.id} of allogeneic batch {unit.coi} is allocated to case "
            f"{allocation.recipient}, but the wristband is case {case.coi}. Do not infuse; the mismatch "
            "is recorded in the cases involved and the coordinators are alerted.",
        )
    closed = closed_detail(allocation)
    if closed is not None:
        return _Stop("case_closed", "Bedside check: recipient's case closed", closed)
    return None


def _stop(case: CaseRow, unit: UnitRow, site: str) -> _Stop | None:
    if unit.coi != case.coi:
        return _Stop(
            "coi_mismatch",
            "Bedside check: wristband and bag of different patients",
            f"STOP — wristband and bag belong to different patients: the wristband is case {case.coi}, "
            f"bag {unit.id} belongs to case {unit.coi}. Do not infuse; the mismatch is recorded in both "
            "cases and the coordinators are alerted.",
        )
    if unit.quarantined:
        return _Stop(
            "not_infusable",
            "Bedside check: bag in quarantine",
            f"STOP — bag {unit.id} is in quarantine and cannot be infused.",
        )
    if unit.status != INFUSABLE:
        return _Stop(
            "not_infusable",
            "Bedside check: bag not ready to infuse",
            f"STOP — bag {unit.id} is {unit.status.replace('_', ' ')}, not thawed: it cannot be infused now.",
        )
    if unit.site is not None and unit.site != site:
        return _Stop(
            "not_infusable",
            "Bedside check: bag at another site",
            f"STOP — bag {unit.id} is recorded at site {unit.site}, not at {site}.",
        )
    return None


async def verify(pool: Pool, actor: Principal, command: Verification) -> Verdict:
    async with pool.acquire() as conn:
        for _attempt in range(3):
            try:
                async with conn.transaction():
                    verdict = await _verify(conn, actor, command)
                    body = msgspec.to_builtins(verdict)
                    if not await events.remember_answer(
                        conn, command.idempotency_key, actor.user_id, 200 if verdict.match else 409, body
                    ):
                        raise _Duplicate
                if not verdict.match:
                    log.warning("bedside stop", extra={"refusal": verdict.refusal, "site": command.site})
                return verdict
            except asyncpg.SerializationError:  # pragma: no cover - retried by design
                continue
            except (_Duplicate, DomainError):
                remembered = await events.remembered_answer(conn, command.idempotency_key)
                if remembered is None:
                    raise
                actor_id, _status, stored = remembered
                if actor_id != actor.user_id:
                    raise Conflict(
                        "this idempotency key was already used by someone else; generate a new key per check"
                    ) from None
                return msgspec.convert(stored, Verdict)
    raise Conflict("the check could not be recorded because of concurrent changes; scan again")


class _Duplicate(Exception):
    """Another request with the same key committed first: roll back ours and answer theirs."""


async def _judge(conn: Conn, case: CaseRow, unit: UnitRow, site: str) -> tuple[_Stop | None, str | None]:
    """The STOP for this wristband and bag, or None; and the bag's recipient when it is a bag of an
    allogeneic batch allocated to someone."""
    allocation = (await allocations.of_units(conn, [unit.id])).get(unit.id)
    recipient = allocation.recipient if allocation is not None and allocation.allogeneic else None
    # A bag of a batch allocated to this wristband's patient is compared further as that patient's.
    patients_bag = msgspec.structs.replace(unit, coi=case.coi) if recipient == case.coi else unit
    return _allocation_stop(case, unit, allocation) or _stop(case, patients_bag, site), recipient


def _match_detail(unit: UnitRow, recipient: str | None) -> str:
    batch = f" (allocated from batch {unit.coi})" if recipient else ""
    return f"Wristband and bag {unit.id} belong to the same patient{batch}; the bag is thawed."


async def _verify(conn: Conn, actor: Principal, command: Verification) -> Verdict:
    # The gate first: nothing about a case or bag the nurse cannot see may be said or written.
    case = await objects.case(conn, actor, _wristband_coi(command.wristband))
    unit, _owner = await _bag(conn, actor, command.bag)
    if not actor.at_site(command.site):
        raise PermissionDenied(f"you are not assigned to site {command.site}")
    stop, recipient = await _judge(conn, case, unit, command.site)
    if stop is None:
        return Verdict(True, _match_detail(unit, recipient), case.coi, unit.id)
    # The wristband's case, the bag's (its batch's, for an allogeneic bag) and its recipient's.
    involved = sorted({case.coi, unit.coi, recipient or case.coi})
    # Chains are locked in one order, so two checks of the same two cases cannot deadlock.
    locked = {coi: await chains.lock(conn, coi) for coi in involved}
    event_ids: list[int] = []
    for coi in involved:
        sites = sorted({command.site} | ({unit.site} if unit.site and unit.coi == coi else set()))
        appended = await chains.append(
            conn,
            locked[coi],
            action=ACTION,
            outcome="refused",
            refusal=stop.code,
            detail=stop.detail,
            actor=actor,
            site=command.site,
            unit_ids=[unit.id] if unit.coi == coi else [],
            codes=[command.wristband, command.bag],
            device_time=command.device_time,
            data=_data(case, unit) | ({"bag_recipient": recipient} if recipient else {}),
        )
        event_ids.append(appended.event_id)
        await alerting.raise_alert(
            conn,
            kind=stop.code if stop.code == "coi_mismatch" else "bedside_stop",
            severity="critical",
            title=stop.title,
            detail=f"{actor.full_name} at {command.site}: {stop.detail}",
            condition_key=f"refusal:{appended.event_id}",
            sites=sites,
            coi=coi,
            unit_id=unit.id if unit.coi == coi else None,
            event_id=appended.event_id,
            rule={"refusal": stop.code},
        )
        await outbox_events.announce(
            conn,
            "event",
            sites,
            coi,
            {"event_id": appended.event_id, "action": ACTION, "outcome": "refused", "refusal": stop.code},
        )
    return Verdict(False, stop.detail, case.coi, unit.id, stop.code, event_ids, involved)


def _data(case: CaseRow, unit: UnitRow) -> dict[str, Any]:
    return {"wristband_coi": case.coi, "bag_unit": unit.id, "bag_coi": unit.coi, "bag_status": unit.status}
