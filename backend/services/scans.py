"""Recording a custody scan: parse the codes, check the step against the state machine under the case's
chain lock, apply it or record the refusal (and alert), and remember the answer for the idempotency key."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import asyncpg
import msgspec

from backend.db.repo import audit, cases, events, shipments, users
from backend.db.repo.cases import UnitRow
from backend.db.repo.outbox import Notice
from backend.db.repo.shipments import ShipmentRow
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.domain.custody import (
    ACTION_ROLES,
    INFUSION_MEANINGS,
    INFUSION_SIGNER_ROLES,
    Action,
    Change,
    Refusal,
    UnitState,
    decide,
)
from backend.domain.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from backend.domain.replay import SHIPMENT_STATUS_ACTIONS, UNIT_STATUS_OF_ACTION, shipment_statuses_after
from backend.services import allocation, ledger, objects, security_log, signing
from backend.services.visibility import site_filter
from celltrail_shared.identifiers import Coi, Din, IdentifierError, ShipmentId, UnitId, parse_identifier

if TYPE_CHECKING:
    from backend.db.types import Conn

log = logging.getLogger(__name__)


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


class Answer(msgspec.Struct, frozen=True):
    status: int
    body: dict[str, Any]
    # Written to the outbox with the remembered answer, at the end of the scan's transaction.
    notice: Notice | None = None


class Scanned(msgspec.Struct, frozen=True):
    shipment_ids: list[str]
    unit_ids: list[str]
    dins: list[str]
    cois: list[str]
    bad: list[str]


def classify(codes: list[str]) -> Scanned:
    shipments_: list[str] = []
    units_: list[str] = []
    dins: list[str] = []
    cois: list[str] = []
    bad: list[str] = []
    for code in codes:
        try:
            identifier = parse_identifier(code)
        except IdentifierError as exc:
            bad.append(f"{code!r}: {exc.reason}")
            continue
        if isinstance(identifier, ShipmentId):
            shipments_.append(identifier.text)
        elif isinstance(identifier, UnitId):
            units_.append(identifier.text)
        elif isinstance(identifier, Din):
            dins.append(identifier.barcode)
        elif isinstance(identifier, Coi):
            cois.append(identifier.value)
        else:
            bad.append(f"{code!r}: a {type(identifier).__name__} is not a custody item")
    return Scanned(shipments_, units_, dins, cois, bad)


def _refusal_body(
    refusal: Refusal, event_id: int | None, coi: str | None, notice: Notice | None = None
) -> Answer:
    return Answer(
        refusal.status,
        {
            "type": f"urn:celltrail:problem:{refusal.code.replace('_', '-')}",
            "title": "STOP — scan refused",
            "status": refusal.status,
            "detail": refusal.detail,
            "errors": [],
            "refusal": refusal.code,
            "event_id": event_id,
            "coi": coi,
        },
        notice,
    )


async def record_scan(pool: Pool, actor: Principal, command: ScanCommand, handover_minutes: int) -> Answer:
    # A resent scan is found by its idempotency key when the answer is remembered, inside the transaction
    # (the key is unique), not by a look-up before it: that would cost every first send a round trip.
    # A resend's own attempt is then rolled back whole, whatever it decided or raised.
    async with pool.acquire() as conn:
        for _attempt in range(3):
            try:
                async with conn.transaction():
                    answer = await _record(conn, actor, command, handover_minutes)
                    if not await events.remember_answer(
                        conn,
                        command.idempotency_key,
                        actor.user_id,
                        answer.status,
                        answer.body,
                        answer.notice,
                        request_digest=command.request_digest(),
                    ):
                        raise _Duplicate
                if answer.status >= 400:
                    # Logged once committed: a resend's rolled-back refusal is not a refusal.
                    refusal = answer.body.get("refusal")
                    log.warning(
                        "scan refused",
                        extra={"refusal": refusal, "coi": answer.body.get("coi"), "site": command.site},
                    )
                return answer
            except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):  # pragma: no cover
                continue
            except (_Duplicate, DomainError):
                remembered = await events.remembered_request(conn, command.idempotency_key)
                if remembered is None:
                    raise
                return await _replay(conn, actor, command, remembered)
    raise Conflict("the scan could not be recorded because of concurrent changes; send it again")


async def record_scan_in(conn: Conn, actor: Principal, command: ScanCommand, handover_minutes: int) -> Answer:
    """`record_scan` on the caller's connection, inside the caller's transaction (an EPCIS capture records
    a document's events together, or none of them): the scan is a savepoint, rolled back alone when its
    key was already used; the caller's transaction decides whether it is kept."""
    try:
        async with conn.transaction():
            answer = await _record(conn, actor, command, handover_minutes)
            if not await events.remember_answer(
                conn,
                command.idempotency_key,
                actor.user_id,
                answer.status,
                answer.body,
                answer.notice,
                request_digest=command.request_digest(),
            ):
                raise _Duplicate
    except (_Duplicate, DomainError):
        remembered = await events.remembered_request(conn, command.idempotency_key)
        if remembered is None:
            raise
        return await _replay(conn, actor, command, remembered)
    return answer


class _Duplicate(Exception):
    """Another request with the same idempotency key committed first: roll back ours, answer theirs."""


async def _replay(
    conn: Conn, actor: Principal, command: ScanCommand, remembered: events.Remembered
) -> Answer:
    """The first answer again for a resend of the same request; a key reused by someone else or for a
    different request is refused (and kept in the audit trail: a client that reuses keys loses scans)."""
    error: DomainError
    if remembered.actor_id != actor.user_id:
        why = "another user"
        error = Conflict("this idempotency key was already used by someone else; generate a new key per scan")
    elif remembered.request_digest not in (None, command.request_digest()):
        why = "a different request"
        error = InvalidInput(
            "this idempotency key was already used for a different request; generate a new key per scan "
            "(only a resend of the very same scan may reuse its key)"
        )
    else:
        return Answer(remembered.status, remembered.body)
    await audit.record(
        conn,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="idempotency_key_refused",
        entity="scan_request",
        entity_id=command.idempotency_key,
        new_value={"action": command.action, "site": command.site, "codes": command.codes, "why": why},
        reason=f"idempotency key already used by {why}",
        sites=[command.site] if actor.at_site(command.site) else [],
    )
    raise error


class _Items(msgspec.Struct):
    """What the scanned codes name, as far as the caller may see: anything else is unknown to them."""

    shipment: ShipmentRow | None
    units: list[UnitRow]
    unknown_units: list[str]
    case_coi: str | None


async def _resolve(conn: Conn, actor: Principal, scanned: Scanned) -> _Items:
    """The object gate for a scan: resolve every code, keep only what the caller may see. A record of
    another site is answered as one that does not exist, and the scan then writes nothing to its chain."""
    shipment = await shipments.get(conn, scanned.shipment_ids[0]) if scanned.shipment_ids else None
    if shipment is not None and not objects.sees_shipment(actor, shipment):
        shipment = None
    units: list[UnitRow] = []
    if scanned.unit_ids or scanned.dins:
        # Read FOR UPDATE: they cannot change before the step is applied under the chain lock.
        units = await cases.lock_visible_units(conn, scanned.unit_ids, scanned.dins, site_filter(actor))
    found = {u.id for u in units} | {u.din for u in units if u.din}
    unknown = sorted({code for code in scanned.unit_ids + scanned.dins if code not in found})
    case_coi = None
    if scanned.cois:
        case = await cases.get_case(conn, scanned.cois[0])
        case_coi = case.coi if case is not None and objects.sees_case(actor, case) else None
    return _Items(shipment, units, unknown, case_coi)


async def _record(conn: Conn, actor: Principal, command: ScanCommand, handover_minutes: int) -> Answer:
    scanned = classify(command.codes)
    if len(set(scanned.shipment_ids)) > 1:
        return await _orphan(
            conn,
            actor,
            command,
            Refusal(
                "unexpected_item",
                "scan one shipment at a time: " + ", ".join(scanned.shipment_ids),
                status=422,
            ),
        )
    items = await _resolve(conn, actor, scanned)
    shipment, units, unknown_units = items.shipment, items.units, items.unknown_units
    coi = shipment.coi if shipment else (units[0].coi if units else None)
    if coi is None and command.action is not Action.INFUSE:
        coi = items.case_coi
    if coi is None:
        reasons = scanned.bad + [f"unknown unit {u}" for u in unknown_units]
        if scanned.shipment_ids and shipment is None:
            reasons.append(f"unknown shipment {scanned.shipment_ids[0]}")
        detail = "; ".join(reasons) or "no shipment or unit code was scanned"
        return await _orphan(
            conn, actor, command, Refusal("unknown_item", f"unknown item: {detail}", status=422)
        )
    unknown = [f"unknown unit {u}" for u in unknown_units]
    if scanned.shipment_ids and shipment is None:
        # Scanned with units of a known case: an unknown shipment (or one the caller cannot see) is
        # refused, not ignored.
        unknown.append(f"unknown shipment {scanned.shipment_ids[0]}")

    # Lock the case's chain: every state change of this case is serialised behind it. The units were
    # read FOR UPDATE above, so they cannot have changed since; the shipment is read again under lock.
    # The same statement reads what the record says the scanned units' and shipment's states are.
    recorded = await cases.lock_chain_with_record(
        conn,
        coi,
        [u.id for u in units if u.coi == coi],
        list(UNIT_STATUS_OF_ACTION),
        shipment.id if shipment is not None and shipment.coi == coi else None,
        list(SHIPMENT_STATUS_ACTIONS),
    )
    if recorded is None:
        raise NotFound(f"no case with COI {coi}")
    chain = ledger.LockedChain(coi, recorded.length, recorded.head)
    if shipment is not None:
        shipment = await shipments.get(conn, shipment.id, lock=True)
    context = _Context(conn, actor, command, chain, shipment, units)
    # A mismatch concerns every patient involved: it is filed in each case the caller may see, not only
    # in the one whose chain this scan locked.
    involved = await allocation.involved(conn, [u.id for u in units], {u.coi for u in units}, items.case_coi)
    context.other_cases = sorted(involved - {coi})
    try:
        if scanned.bad or unknown:
            raise Refusal("unknown_item", "unknown item: " + "; ".join(scanned.bad + unknown), status=422)
        disagreement = _disagreement(recorded, shipment, units, coi)
        if disagreement is not None:
            raise Refusal(
                RECORD_MISMATCH,
                f"STOP — {disagreement}. The stored state was changed without a custody event; do not "
                "proceed. QA and the coordinators are alerted.",
            )
        if not actor.has_any(ACTION_ROLES[command.action]):
            raise Refusal(
                "wrong_role",
                f"{command.action} needs the role "
                + " or ".join(sorted(ACTION_ROLES[command.action]))
                + "; you have "
                + ", ".join(sorted(actor.roles)),
                status=403,
            )
        if not actor.at_site(command.site):
            raise Refusal("wrong_site", f"you are not assigned to site {command.site}", status=403)
        receiver = await _receiver(conn, command, shipment)
        change = decide(
            command.action,
            site=command.site,
            actor_id=actor.user_id,
            shipment=shipment.state() if shipment else None,
            units=await allocation.seen(conn, command.action, [_state(u, recorded) for u in units], scanned),
            wristband_coi=scanned.cois[0] if scanned.cois else None,
            handover_to=receiver.id if receiver else None,
            now=ledger.now(),
            case_status=recorded.case_status,
        )
        signatures = await _signatures(conn, command)
        return await context.accept(change, receiver.id if receiver else None, signatures, handover_minutes)
    except Refusal as refusal:
        return await context.refuse(refusal)


RECORD_MISMATCH = "record_mismatch"


def _state(unit: UnitRow, recorded: cases.RecordedStates) -> UnitState:
    """The unit as the step sees it: its expiry, its thaw time as the record has it (the thaw event's
    time, not the table's column), its catalogue product's thaw window and its site's time zone."""
    record = recorded.units.get(unit.id)
    thawed_at = record.at if record is not None and record.action == "thaw" else None
    window = unit.thaw_to_infusion_min
    return msgspec.structs.replace(
        unit.state(),
        expires_at=unit.expires_at,
        thawed_at=thawed_at,
        thaw_limit=timedelta(minutes=window) if window is not None else None,
        zone=unit.site_zone,
    )


def _disagreement(
    recorded: cases.RecordedStates, shipment: ShipmentRow | None, units: list[UnitRow], coi: str
) -> str | None:
    """Where a scanned unit's or shipment's stored status differs from its last recorded step (a cheap
    check of the objects this scan acts on; `verify` replays the whole chain)."""
    for unit in units:
        if unit.coi != coi:
            continue
        record = recorded.units.get(unit.id)
        expected = UNIT_STATUS_OF_ACTION.get(record.action) if record and record.action else None
        if expected != unit.status:
            said = expected or "unrecorded"
            return f"unit {unit.id} is {unit.status} in the database but {said} in its record"
        assert record is not None  # a recorded status implies the unit's entry
        for flag, stored, says in (
            ("released", unit.released, record.released),
            ("quarantined", unit.quarantined, record.quarantined),
        ):
            if stored != says:
                shown = {True: flag, False: f"not {flag}"}
                return f"unit {unit.id} is {shown[stored]} in the database but {shown[says]} in its record"
    if shipment is not None and shipment.coi == coi:
        last = recorded.shipment_action
        allowed = shipment_statuses_after(*last) if last else frozenset()
        if shipment.status not in allowed:
            said = " or ".join(sorted(allowed)) or "unrecorded"
            return f"shipment {shipment.id} is {shipment.status} in the database but {said} in its record"
    return None


async def _receiver(conn: Conn, command: ScanCommand, shipment: ShipmentRow | None) -> Any:
    """The person taking custody in a hand-over. They must be able to act on the shipment they will hold:
    bound to its origin or its destination, the sites that see it (someone bound elsewhere could hold a
    shipment they cannot read, and hand it on off route)."""
    if command.action is not Action.HANDOVER or command.handover_to is None:
        return None
    receiver = await users.by_username(conn, command.handover_to.strip().lower())
    if receiver is None or not receiver.active:
        raise Refusal(
            "unknown_receiver", f"no active user named {command.handover_to} to hand over to", status=422
        )
    if not {"courier", "pharmacist", "manufacturing"} & set(receiver.roles):
        raise Refusal(
            "unknown_receiver", f"{receiver.username} cannot take custody of a shipment", status=422
        )
    if shipment is not None and not {shipment.from_site, shipment.to_site} & set(receiver.sites):
        raise Refusal(
            "receiver_not_on_route",
            f"{receiver.full_name} ({receiver.username}) is not bound to {shipment.from_site} or "
            f"{shipment.to_site}, the sites of shipment {shipment.id}: hand it over only to someone "
            "serving this route",
            status=422,
        )
    return receiver


async def _signatures(conn: Conn, command: ScanCommand) -> list[Any]:
    if command.action is not Action.INFUSE:
        return []
    people = {s.username.strip().lower() for s in command.signatures}
    if len(command.signatures) != 2 or len(people) != 2:
        raise Refusal(
            "signature_required",
            "an infusion needs two signatures by two different people (verifier and administrator)",
            status=422,
        )
    meanings = sorted(s.meaning for s in command.signatures)
    if meanings != list(INFUSION_MEANINGS):
        raise Refusal(
            "signature_meaning",
            "an infusion is signed once 'verified at bedside' (the verifier) and once 'administered' (the "
            "person who gives it); these signatures mean " + " and ".join(f"'{m}'" for m in meanings),
            status=422,
        )
    at = ledger.now()
    return [
        await signing.sign(conn, s.username, s.password, s.meaning, INFUSION_SIGNER_ROLES, at, command.site)
        for s in command.signatures
    ]


class _Context:
    def __init__(
        self,
        conn: Conn,
        actor: Principal,
        command: ScanCommand,
        chain: ledger.LockedChain,
        shipment: ShipmentRow | None,
        units: list[UnitRow],
    ) -> None:
        self.conn = conn
        self.actor = actor
        self.command = command
        self.chain = chain
        self.coi = chain.coi
        self.shipment = shipment
        self.units = units
        self.other_cases: list[str] = []

    def _sites(self) -> list[str]:
        # The scan's site only when the caller belongs there: a claimed site is no address for alerts.
        sites = {self.command.site} if self.actor.at_site(self.command.site) else set()
        if self.shipment is not None:
            sites |= {self.shipment.from_site, self.shipment.to_site}
        sites |= {u.site for u in self.units if u.site}
        return sorted(sites)

    def _event_fields(self) -> dict[str, Any]:
        return {
            "coi": self.coi,
            "actor": self.actor,
            "site": self.command.site,
            "shipment_id": self.shipment.id if self.shipment else None,
            "codes": self.command.codes,
            "device_time": self.command.device_time,
            "gps": self.command.gps,
            "chain": self.chain,
        }

    async def accept(
        self, change: Change, receiver_id: int | None, signatures: list[Any], handover_minutes: int
    ) -> Answer:
        conn, command = self.conn, self.command
        shipment_id = self.shipment.id if self.shipment else None
        unit_ids = sorted(set(change.unit_status) | {u.id for u in self.units})
        data: dict[str, Any] = {}
        counterpart = None
        if command.action is Action.STORE:
            if not command.storage_location:
                raise Refusal(
                    "storage_location_required", "say where the unit is stored (storage_location)", status=422
                )
            data["storage_location"] = command.storage_location
        if command.action is Action.DISPOSE:
            if not command.reason:
                raise Refusal("reason_required", "give the reason for disposal", status=422)
            data["reason"] = command.reason
        if (
            command.action in (Action.PICKUP, Action.RECEIVE)
            and self.shipment is not None
            and change.take_custody
        ):
            counterpart = self.shipment.holder_id
        if command.action is Action.HANDOVER:
            counterpart = receiver_id
            data["handover_to"] = command.handover_to
        appended = await ledger.append(
            conn,
            action=command.action.value,
            detail=change.detail,
            unit_ids=unit_ids,
            counterpart_id=counterpart,
            data=data,
            signatures=signatures,
            **self._event_fields(),
        )
        await self._apply(change, appended, receiver_id, handover_minutes)
        finishing = command.action in (Action.INFUSE, Action.DISPOSE)
        if finishing and await cases.complete_if_done(conn, self.coi):
            completed = {"coi": self.coi, "status": "completed"}
            await ledger.announce(conn, "case", self._sites(), self.coi, completed)
        statuses = {u.id: change.unit_status.get(u.id, u.status) for u in self.units}
        if self.shipment is not None:
            for unit_id in self.shipment.manifest:
                statuses.setdefault(unit_id, change.unit_status.get(unit_id, "planned"))
        shipment_status = change.shipment_status or (self.shipment.status if self.shipment else None)
        notice = Notice.of(
            "event",
            self._sites(),
            self.coi,
            {
                "event_id": appended.event_id,
                "action": command.action.value,
                "outcome": "accepted",
                "shipment_id": shipment_id,
                "shipment_status": shipment_status,
                "unit_ids": unit_ids,
                "actor": self.actor.full_name,
                "site": command.site,
            },
        )
        return Answer(
            201,
            {
                "event_id": appended.event_id,
                "coi": self.coi,
                "seq": appended.seq,
                "action": command.action.value,
                "outcome": "accepted",
                "shipment_id": shipment_id,
                "unit_ids": unit_ids,
                "shipment_status": shipment_status,
                "unit_statuses": statuses,
                "message": change.detail,
                "server_time": appended.server_time.isoformat(),
                "hash": appended.hash,
            },
            notice,
        )

    async def _apply(
        self, change: Change, appended: ledger.Appended, receiver_id: int | None, handover_minutes: int
    ) -> None:
        conn, command, actor = self.conn, self.command, self.actor
        location = command.storage_location if command.action is Action.STORE else None
        for status in set(change.unit_status.values()):
            await cases.set_unit_status(
                conn, [u for u, s in change.unit_status.items() if s == status], status, location
            )
        if self.shipment is None:
            return
        if change.shipment_status:
            await shipments.set_status(conn, self.shipment.id, change.shipment_status)
        if change.packed:
            await shipments.mark_units(conn, self.shipment.id, sorted(change.packed), "packed")
        if change.receipt_scanned:
            await shipments.mark_units(
                conn, self.shipment.id, sorted(change.receipt_scanned), "receipt_scanned"
            )
        if change.take_custody:
            await shipments.set_holder(conn, self.shipment.id, actor.user_id)
            await cases.move_units(conn, self.shipment.manifest, None, actor.user_id)
            if self.shipment.open_handover_id is not None:
                # The receiving scan is the receiver's confirmation of a pending hand-over.
                await events.confirm_handover(conn, self.shipment.open_handover_id, appended.event_id)
                await ledger.resolve_alert(conn, f"handover:{self.shipment.open_handover_id}")
        if command.action is Action.HANDOVER and receiver_id is not None:
            await events.open_handover(
                conn,
                self.shipment.id,
                appended.event_id,
                actor.user_id,
                receiver_id,
                command.site,
                appended.server_time,
                appended.server_time + timedelta(minutes=handover_minutes),
            )

    async def refuse(self, refusal: Refusal) -> Answer:
        appended = await ledger.append(
            self.conn,
            action=self.command.action.value,
            outcome="refused",
            refusal=refusal.code,
            detail=refusal.detail,
            unit_ids=[u.id for u in self.units],
            **self._event_fields(),
        )
        critical = refusal.code in ("coi_mismatch", RECORD_MISMATCH)
        severity = "critical" if critical else "warning"
        title = {
            "coi_mismatch": "Chain of identity mismatch",
            RECORD_MISMATCH: "Stored state disagrees with the custody record",
        }.get(refusal.code, f"Refused {self.command.action} scan")
        await ledger.raise_alert(
            self.conn,
            kind=refusal.code if critical else "refused_step",
            severity=severity,
            title=title,
            detail=f"{self.actor.full_name} at {self.command.site}: {refusal.detail}",
            condition_key=f"refusal:{appended.event_id}",
            sites=self._sites(),
            coi=self.coi,
            shipment_id=self.shipment.id if self.shipment else None,
            event_id=appended.event_id,
            rule={"refusal": refusal.code},
        )
        notice = Notice.of(
            "event",
            self._sites(),
            self.coi,
            {
                "event_id": appended.event_id,
                "action": self.command.action.value,
                "outcome": "refused",
                "refusal": refusal.code,
                "shipment_id": self.shipment.id if self.shipment else None,
            },
        )
        if refusal.code == "coi_mismatch":
            for other in self.other_cases:
                await self._file_mismatch_in(other, refusal, appended.event_id)
        return _refusal_body(refusal, appended.event_id, self.coi, notice)

    async def _file_mismatch_in(self, coi: str, refusal: Refusal, first_event_id: int) -> None:
        """The same refusal in another case involved (the wristband's, a foreign bag's), with its alert.
        Its chain is locked after this scan's own; two scans locking the same two cases the other way
        round deadlock, and PostgreSQL rolls one back, which `record_scan` sends again."""
        chain = await ledger.lock_chain(self.conn, coi)
        fields = self._event_fields() | {"coi": coi, "chain": chain, "shipment_id": None}
        appended = await ledger.append(
            self.conn,
            action=self.command.action.value,
            outcome="refused",
            refusal=refusal.code,
            detail=refusal.detail,
            unit_ids=[u.id for u in self.units if u.coi == coi],
            data={"also_recorded_in": self.coi, "event_id": first_event_id},
            **fields,
        )
        sites = {u.site for u in self.units if u.coi == coi and u.site}
        sites |= {self.command.site} if self.actor.at_site(self.command.site) else set()
        await ledger.raise_alert(
            self.conn,
            kind=refusal.code,
            severity="critical",
            title="Chain of identity mismatch",
            detail=f"{self.actor.full_name} at {self.command.site}: {refusal.detail}",
            condition_key=f"refusal:{appended.event_id}",
            sites=sorted(sites),
            coi=coi,
            event_id=appended.event_id,
            rule={"refusal": refusal.code},
        )
        await ledger.announce(
            self.conn,
            "event",
            sorted(sites),
            coi,
            {"event_id": appended.event_id, "action": self.command.action.value, "outcome": "refused"},
        )


async def _orphan(conn: Conn, actor: Principal, command: ScanCommand, refusal: Refusal) -> Answer:
    """A refused scan that names no known case is kept outside any chain, and still alerts."""
    orphan_id = await events.record_orphan(
        conn, actor.user_id, command.site, command.action.value, command.codes, refusal.code, refusal.detail
    )
    await ledger.raise_alert(
        conn,
        kind="refused_step",
        severity="warning",
        title=f"Refused {command.action} scan (unknown item)",
        detail=f"{actor.full_name} at {command.site}: {refusal.detail}",
        condition_key=f"orphan:{orphan_id}",
        # Addressed to the caller's own sites: an unknown item is theirs to explain, nobody else's.
        sites=[command.site] if actor.at_site(command.site) else sorted(actor.sites),
        rule={"refusal": refusal.code},
    )
    return _refusal_body(refusal, None, None)


async def confirm_handover(pool: Pool, actor: Principal, handover_id: int) -> ledger.Appended:
    try:
        return await _confirm_handover(pool, actor, handover_id)
    except _NotTheReceiver as refused:
        await security_log.refused(
            pool,
            actor,
            action="handover_confirmation_refused",
            entity="handover",
            entity_id=str(handover_id),
            why="not the named receiver",
            what={"shipment_id": refused.shipment_id},
        )
        raise PermissionDenied("only the named receiver can confirm this hand-over") from None


class _NotTheReceiver(Exception):
    def __init__(self, shipment_id: str) -> None:
        self.shipment_id = shipment_id


async def _confirm_handover(pool: Pool, actor: Principal, handover_id: int) -> ledger.Appended:
    async with pool.acquire() as conn, conn.transaction():
        _unlocked, shipment = await objects.handover(conn, actor, handover_id)
        await cases.lock_chain(conn, shipment.coi)
        handover, _leg = await objects.handover(conn, actor, handover_id, lock=True)
        if handover.receiver_id != actor.user_id:
            raise _NotTheReceiver(shipment.id)
        if handover.confirmed_at is not None:
            raise Conflict(f"hand-over {handover_id} was confirmed at {handover.confirmed_at.isoformat()}")
        appended = await ledger.append(
            conn,
            coi=shipment.coi,
            action="handover_confirm",
            actor=actor,
            site=handover.site,
            shipment_id=shipment.id,
            unit_ids=shipment.manifest,
            counterpart_id=handover.giver_id,
            detail=f"{actor.full_name} confirmed taking custody of {shipment.id}",
            data={"handover_id": handover_id},
        )
        await events.confirm_handover(conn, handover_id, appended.event_id)
        await shipments.set_holder(conn, shipment.id, actor.user_id)
        await cases.move_units(conn, shipment.manifest, None, actor.user_id)
        await ledger.resolve_alert(conn, f"handover:{handover_id}")
        await ledger.announce(
            conn,
            "event",
            [shipment.from_site, shipment.to_site],
            shipment.coi,
            {"event_id": appended.event_id, "action": "handover_confirm", "shipment_id": shipment.id},
        )
    return appended


async def alert_overdue_handovers(pool: Pool) -> int:
    """Housekeeping: one alert per hand-over not confirmed in time (safe with several replicas)."""
    raised = 0
    async with pool.acquire() as conn, conn.transaction():
        for row in await events.overdue_handovers(conn):
            alert_id = await ledger.raise_alert(
                conn,
                kind="unconfirmed_handover",
                severity="warning",
                title=f"Hand-over of {row['shipment_id']} not confirmed",
                detail=f"{row['giver']} handed {row['shipment_id']} to {row['receiver']} at {row['site']}; "
                f"no confirmation since {row['due_at'].isoformat()}",
                condition_key=f"handover:{row['id']}",
                sites=[row["from_site"], row["to_site"], row["site"]],
                coi=row["coi"],
                shipment_id=row["shipment_id"],
            )
            raised += alert_id is not None
    return raised
