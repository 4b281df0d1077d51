"""A case's custody chain: the only way to lock it and append to it. `lock` takes the chain head for the
rest of the transaction and returns it; `append` takes that locked chain, so a command locks once and
every append it makes stays in order behind the same lock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from backend.db.repo import cases, events
from backend.domain.chain import EventRecord, SignatureRecord, keyed_link
from backend.domain.errors import NotFound
from backend.services import record_keys

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


def now() -> datetime:
    return datetime.now(UTC)


async def lock(conn: Conn, coi: str) -> LockedChain:
    """Must run inside a transaction: every state change of this case is serialised behind this lock."""
    head = await cases.lock_chain(conn, coi)
    if head is None:
        raise NotFound(f"no case with COI {coi}")
    return LockedChain(coi, *head)


async def lock_with_record(
    conn: Conn,
    coi: str,
    unit_ids: list[str],
    unit_actions: list[str],
    shipment_id: str | None,
    shipment_actions: list[str],
) -> tuple[LockedChain, cases.RecordedStates]:
    """`lock`, with what the record says the given units' and shipment's states are, in one statement."""
    recorded = await cases.lock_chain_with_record(
        conn, coi, unit_ids, unit_actions, shipment_id, shipment_actions
    )
    if recorded is None:
        raise NotFound(f"no case with COI {coi}")
    return LockedChain(coi, recorded.length, recorded.head), recorded


async def append(
    conn: Conn,
    chain: LockedChain,
    *,
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
) -> Appended:
    """Appends one event to the locked chain (see `lock`) and moves its head on."""
    key = record_keys.current().current
    if key is None:
        # Never an unkeyed event: it would look exactly like one recomputed by someone without the key.
        raise record_keys.RecordKeyMissing("this process holds no record key; nothing can be recorded")
    record = EventRecord(
        coi=chain.coi,
        seq=chain.length + 1,
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
    digest = keyed_link(key, chain.head, record)
    event_id = await events.insert_event(conn, record, chain.head, digest, key.key_id)
    chain.length, chain.head = record.seq, digest
    return Appended(event_id, record.seq, digest.hex(), record.server_time)
