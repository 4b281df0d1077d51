"""Appending to a case's custody chain, verifying it, and announcing changes on the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from backend.db.repo import alerts, cases, events, outbox
from backend.domain.chain import EventRecord, SignatureRecord, event_hash, first_break
from backend.domain.errors import NotFound

if TYPE_CHECKING:
    from backend.db.types import Conn
    from backend.domain.access import Principal


class Appended(msgspec.Struct, frozen=True):
    event_id: int
    seq: int
    hash: str
    server_time: datetime


class LockedChain:
    """A case's chain head, locked for the rest of the transaction. Appends through it skip re-reading
    the head (one round trip fewer per scan) and keep it current, so several appends stay in order."""

    def __init__(self, coi: str, length: int, head: bytes | None) -> None:
        self.coi = coi
        self.length = length
        self.head = head


async def lock_chain(conn: Conn, coi: str) -> LockedChain | None:
    """Must run inside a transaction: every state change of this case is serialised behind this lock."""
    head = await cases.lock_chain(conn, coi)
    return None if head is None else LockedChain(coi, *head)


def now() -> datetime:
    return datetime.now(UTC)


async def append(
    conn: Conn,
    *,
    coi: str,
    action: str,
    actor: Principal,
    site: str,
    detail: str,
    outcome: str = "accepted",
    refusal: str | None = None,
    shipment_id: str | None = None,
    unit_ids: list[str] | None = None,
    counterpart_id: int | None = None,
    codes: list[str] | None = None,
    device_time: datetime | None = None,
    gps: Any = None,
    data: Any = None,
    corrects: int | None = None,
    signatures: list[SignatureRecord] | None = None,
    server_time: datetime | None = None,
    chain: LockedChain | None = None,
) -> Appended:
    """Must run inside a transaction. Locks the chain head (unless the caller holds it as `chain`), so
    concurrent appends queue up here."""
    if chain is None or chain.coi != coi:
        chain = await lock_chain(conn, coi)
    if chain is None:
        raise NotFound(f"no case with COI {coi}")
    length, previous = chain.length, chain.head
    record = EventRecord(
        coi=coi,
        seq=length + 1,
        action=action,
        outcome=outcome,
        refusal=refusal,
        detail=detail,
        shipment_id=shipment_id,
        unit_ids=sorted(unit_ids or []),
        actor_id=actor.user_id,
        actor_name=actor.full_name,
        site=site,
        counterpart_id=counterpart_id,
        codes=codes or [],
        device_time=device_time,
        server_time=server_time or now(),
        gps=gps,
        data=data or {},
        corrects=corrects,
        signatures=signatures or [],
    )
    digest = event_hash(previous, record)
    event_id = await events.insert_event(conn, record, previous, digest)
    chain.length, chain.head = record.seq, digest
    return Appended(event_id, record.seq, digest.hex(), record.server_time)


async def announce(conn: Conn, kind: str, sites: list[str], coi: str | None, payload: Any) -> None:
    await outbox.publish(conn, kind, sites, coi, payload)


async def raise_alert(
    conn: Conn,
    *,
    kind: str,
    severity: str,
    title: str,
    detail: str,
    condition_key: str,
    sites: list[str],
    coi: str | None = None,
    shipment_id: str | None = None,
    unit_id: str | None = None,
    event_id: int | None = None,
    rule: Any = None,
) -> int | None:
    alert_id = await alerts.open_alert(
        conn,
        kind=kind,
        severity=severity,
        title=title,
        detail=detail,
        condition_key=condition_key,
        sites=sites,
        started_at=now(),
        coi=coi,
        shipment_id=shipment_id,
        unit_id=unit_id,
        event_id=event_id,
        rule=rule,
    )
    if alert_id is not None:
        await announce(
            conn,
            "alert",
            sites,
            coi,
            {
                "id": alert_id,
                "alert_kind": kind,
                "severity": severity,
                "title": title,
                "status": "open",
                "shipment_id": shipment_id,
            },
        )
    return alert_id


class Verification(msgspec.Struct, frozen=True):
    coi: str
    ok: bool
    events: int
    head_hash: str | None
    first_break: dict[str, Any] | None
    corrected: bool
    message: str


async def verify(conn: Conn, coi: str) -> Verification:
    stored = await events.events_of_case(conn, coi)
    head = await conn.fetchrow("SELECT chain_length, chain_head FROM cases WHERE coi = $1", coi)
    if head is None:
        raise NotFound(f"no case with COI {coi}")
    broken = first_break([(e.id, e.prev_hash, e.hash, e.record) for e in stored])
    if broken is None and (
        head["chain_length"] != len(stored) or (stored and head["chain_head"] != stored[-1].hash)
    ):
        broken_dict: dict[str, Any] | None = {
            "seq": len(stored),
            "event_id": stored[-1].id if stored else None,
            "reason": "the case's chain head does not match its last event (events removed or added)",
        }
    else:
        broken_dict = msgspec.structs.asdict(broken) if broken else None
    corrected = any(e.record.corrects is not None for e in stored)
    ok = broken_dict is None
    message = (
        f"all {len(stored)} events verify"
        if ok
        else f"the chain breaks at event {broken_dict['seq'] if broken_dict else '?'}"
    )
    return Verification(
        coi=coi,
        ok=ok,
        events=len(stored),
        head_hash=stored[-1].hash.hex() if stored else None,
        first_break=broken_dict,
        corrected=corrected,
        message=message,
    )


async def resolve_alert(conn: Conn, condition_key: str) -> None:
    alert_id = await alerts.resolve_condition(conn, condition_key, now())
    if alert_id is not None:
        row = await alerts.get(conn, alert_id)
        assert row is not None
        await announce(conn, "alert", row.sites, row.coi, {"id": alert_id, "status": "resolved"})
