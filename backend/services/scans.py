"""Recording a custody scan: parse the codes, check the step against the state machine under the case's
chain lock, apply it or record the refusal (and alert), and remember the outcome for the idempotency key.
The command answers `Accepted | Refused` (scan_outcomes); the API turns that into HTTP."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import asyncpg
import msgspec

from backend.db.repo import events, shipments
from backend.db.repo.outbox import Notice
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.domain.custody import ACTION_ROLES, Action, Change, Refusal, decide
from backend.domain.errors import Conflict, DomainError
from backend.domain.replay import SHIPMENT_STATUS_ACTIONS, UNIT_STATUS_OF_ACTION
from backend.services import allocation
from backend.services import chain as chains
from backend.services.handovers import alert_overdue_handovers, confirm_handover
from backend.services.scan_checks import disagreement, receiver, signatures, state
from backend.services.scan_context import Context, orphan
from backend.services.scan_items import Scanned, classify, resolve
from backend.services.scan_outcomes import (
    RECORD_MISMATCH,
    SEVERAL_SHIPMENTS,
    UNASSIGNED_SITE,
    Accepted,
    Outcome,
    Refused,
    ScanRefusal,
)
from backend.services.scan_replay import OUTCOME_STORED, replay

if TYPE_CHECKING:
    from backend.db.repo.cases import RecordedStates
    from backend.db.types import Conn

log = logging.getLogger(__name__)

__all__ = [
    "Accepted",
    "Outcome",
    "Refused",
    "ScanCommand",
    "SignatureInput",
    "alert_overdue_handovers",
    "confirm_handover",
    "record_scan",
    "record_scan_in",
]


class SignatureInput(msgspec.Struct, frozen=True):
    username: str
    password: str
    meaning: str


# The API's ScanRequest holds the same bounds; a command built elsewhere (EPCIS capture) is checked
# against these before it is recorded (`over_bounds`).
MAX_CODES, MAX_CODE_LENGTH, MAX_LOCATION_LENGTH = 50, 200, 200


class ScanCommand(msgspec.Struct, frozen=True, kw_only=True):
    idempotency_key: Annotated[str, msgspec.Meta(min_length=8, max_length=100)]
    action: Action
    site: Annotated[str, msgspec.Meta(max_length=32)]
    codes: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=MAX_CODE_LENGTH)]], msgspec.Meta(max_length=MAX_CODES)
    ]
    device_time: datetime | None = None
    gps: Annotated[dict[str, float | None], msgspec.Meta(max_length=3)] | None = None
    handover_to: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    storage_location: Annotated[str, msgspec.Meta(max_length=MAX_LOCATION_LENGTH)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    signatures: Annotated[list[SignatureInput], msgspec.Meta(max_length=5)] = []

    def request_digest(self) -> bytes:
        """What makes two sends one request: what it asks for (action, site, codes, receiver, location,
        reason, signers and meanings). Not the key itself, not the signers' passwords (never stored, not
        even hashed), and not the device's clock and position, which a client may read again when it
        retries the same scan."""
        same = msgspec.structs.replace(
            self,
            idempotency_key="",
            device_time=None,
            gps=None,
            signatures=[msgspec.structs.replace(s, password="") for s in self.signatures],
        )
        return hashlib.sha256(msgspec.json.encode(same)).digest()

    def over_bounds(self) -> str | None:
        """Why a command built from a document is too large to record, or None."""
        if len(self.codes) > MAX_CODES:
            return f"at most {MAX_CODES} items per step"
        if any(len(code) > MAX_CODE_LENGTH for code in self.codes):
            return f"an item code is longer than {MAX_CODE_LENGTH} characters"
        if self.storage_location is not None and len(self.storage_location) > MAX_LOCATION_LENGTH:
            return f"the storage location is longer than {MAX_LOCATION_LENGTH} characters"
        return None


async def record_scan(pool: Pool, actor: Principal, command: ScanCommand, handover_minutes: int) -> Outcome:
    # A resent scan is found by its idempotency key when the outcome is remembered, inside the transaction
    # (the key is unique), not by a look-up before it: that would cost every first send a round trip.
    # A resend's own attempt is then rolled back whole, whatever it decided or raised.
    async with pool.acquire() as conn:
        for _attempt in range(3):
            try:
                async with conn.transaction():
                    outcome = await _record_remembered(conn, actor, command, handover_minutes)
                if isinstance(outcome, Refused):
                    # Logged once committed: a resend's rolled-back refusal is not a refusal.
                    log.warning(
                        "scan refused",
                        extra={"refusal": outcome.code, "coi": outcome.coi, "site": command.site},
                    )
                return outcome
            except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):  # pragma: no cover
                continue
            except (_Duplicate, DomainError):
                remembered = await events.remembered_request(conn, command.idempotency_key)
                if remembered is None:
                    raise
                return await replay(conn, actor, command, remembered)
    raise Conflict("the scan could not be recorded because of concurrent changes; send it again")


async def record_scan_in(
    conn: Conn, actor: Principal, command: ScanCommand, handover_minutes: int
) -> Outcome:
    """`record_scan` on the caller's connection, inside the caller's transaction (an EPCIS capture records
    a document's events together, or none of them): the scan is a savepoint, rolled back alone when its
    key was already used; the caller's transaction decides whether it is kept."""
    try:
        async with conn.transaction():
            return await _record_remembered(conn, actor, command, handover_minutes)
    except (_Duplicate, DomainError):
        remembered = await events.remembered_request(conn, command.idempotency_key)
        if remembered is None:
            raise
        return await replay(conn, actor, command, remembered)


class _Duplicate(Exception):
    """Another request with the same idempotency key committed first: roll back ours, answer theirs."""


async def _record_remembered(
    conn: Conn, actor: Principal, command: ScanCommand, handover_minutes: int
) -> Outcome:
    """Records the scan and remembers its outcome for the key, with the outcome's outbox notice."""
    outcome, notice = await _record(conn, actor, command, handover_minutes)
    if not await events.remember_answer(
        conn,
        command.idempotency_key,
        actor.user_id,
        OUTCOME_STORED,
        msgspec.to_builtins(outcome),
        notice,
        request_digest=command.request_digest(),
    ):
        raise _Duplicate
    return outcome


async def _record(
    conn: Conn, actor: Principal, command: ScanCommand, handover_minutes: int
) -> tuple[Outcome, Notice | None]:
    scanned = classify(command.codes)
    if len(set(scanned.shipment_ids)) > 1:
        several = "scan one shipment at a time: " + ", ".join(scanned.shipment_ids)
        refusal = ScanRefusal("unexpected_item", several, variant=SEVERAL_SHIPMENTS)
        return await orphan(conn, actor, command, refusal), None
    items = await resolve(conn, actor, scanned)
    coi = items.coi(command.action)
    if coi is None:
        reasons = scanned.bad + items.unknown(scanned)
        detail = "; ".join(reasons) or "no shipment or unit code was scanned"
        refusal = ScanRefusal("unknown_item", f"unknown item: {detail}")
        return await orphan(conn, actor, command, refusal), None
    unknown = items.unknown(scanned)
    shipment, units = items.shipment, items.units
    # Lock the case's chain: every state change of this case is serialised behind it. The units were
    # read FOR UPDATE when resolved, so they cannot have changed since; the shipment is read again under
    # lock. The same statement reads what the record says the scanned units' and shipment's states are.
    chain, recorded = await chains.lock_with_record(
        conn,
        coi,
        [u.id for u in units if u.coi == coi],
        list(UNIT_STATUS_OF_ACTION),
        shipment.id if shipment is not None and shipment.coi == coi else None,
        list(SHIPMENT_STATUS_ACTIONS),
    )
    if shipment is not None:
        shipment = await shipments.get(conn, shipment.id, lock=True)
    context = Context(conn, actor, command, chain, shipment, units)
    # A mismatch concerns every patient involved: it is filed in each case the caller may see, not only
    # in the one whose chain this scan locked.
    involved = await allocation.involved(conn, [u.id for u in units], {u.coi for u in units}, items.case_coi)
    context.other_cases = sorted(involved - {coi})
    try:
        if scanned.bad or unknown:
            raise ScanRefusal("unknown_item", "unknown item: " + "; ".join(scanned.bad + unknown))
        _check_record_and_caller(context, recorded)
        change, receiver_id, signed = await _decide(context, scanned, recorded)
        return await context.accept(change, receiver_id, signed, handover_minutes)
    except Refusal as refusal:
        return await context.refuse(refusal)


def _check_record_and_caller(context: Context, recorded: RecordedStates) -> None:
    """Refuses a scan of objects whose stored state disagrees with their record, or by someone without
    the step's role or not assigned to the scan's site."""
    actor, command = context.actor, context.command
    differs = disagreement(recorded, context.shipment, context.units, context.coi)
    if differs is not None:
        raise ScanRefusal(
            RECORD_MISMATCH,
            f"STOP — {differs}. The stored state was changed without a custody event; do not "
            "proceed. QA and the coordinators are alerted.",
        )
    if not actor.has_any(ACTION_ROLES[command.action]):
        raise ScanRefusal(
            "wrong_role",
            f"{command.action} needs the role "
            + " or ".join(sorted(ACTION_ROLES[command.action]))
            + "; you have "
            + ", ".join(sorted(actor.roles)),
        )
    if not actor.at_site(command.site):
        raise ScanRefusal(
            "wrong_site",
            f"you are not assigned to site {command.site}",
            variant=UNASSIGNED_SITE,
        )


async def _decide(
    context: Context, scanned: Scanned, recorded: RecordedStates
) -> tuple[Change, int | None, list[Any]]:
    """The custody rules' change for this step, with the hand-over's receiver and the step's signatures."""
    conn, actor, command, shipment = context.conn, context.actor, context.command, context.shipment
    taker = await receiver(conn, command, shipment)
    change = decide(
        command.action,
        site=command.site,
        actor_id=actor.user_id,
        shipment=shipment.state() if shipment else None,
        units=await allocation.seen(
            conn, command.action, [state(u, recorded) for u in context.units], scanned
        ),
        wristband_coi=scanned.cois[0] if scanned.cois else None,
        handover_to=taker.id if taker else None,
        now=chains.now(),
        case_status=recorded.case_status,
    )
    return change, taker.id if taker else None, await signatures(conn, command)
