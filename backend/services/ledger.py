"""Appending to a case's custody chain, verifying it, and announcing changes on the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from backend.db.repo import alerts, cases, events, outbox, shipments
from backend.domain import checkpoint as checkpoints
from backend.domain.chain import EventRecord, LinkedEvent, SignatureRecord, check_chain, keyed_link
from backend.domain.errors import NotFound
from backend.domain.keyring import Keyring
from backend.domain.replay import compare, replay
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
    key = record_keys.current().current
    if key is None:
        # Never an unkeyed event: it would look exactly like one recomputed by someone without the key.
        raise record_keys.RecordKeyMissing("this process holds no record key; nothing can be recorded")
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
    digest = keyed_link(key, previous, record)
    event_id = await events.insert_event(conn, record, previous, digest, key.key_id)
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
    # True only when every link was checked and holds, the tables agree with the record and the chain
    # contains its latest checkpointed head. Never true when a key is missing.
    ok: bool
    # verified, broken (a link, the head, the tables or a checkpoint contradicts the record) or
    # unverifiable (a key the events name is not in this server's keyring).
    status: str
    events: int
    head_hash: str | None
    first_break: dict[str, Any] | None
    corrected: bool
    message: str
    # Seqs of legacy events linked before record keys (plain SHA-256, recomputable by anyone).
    unkeyed_events: list[int] = []
    key_ids: list[str] = []
    missing_keys: list[str] = []
    # Objects whose stored state differs from the state replayed from the record.
    state_mismatches: list[dict[str, Any]] = []
    checkpoint: dict[str, Any] | None = None


async def verify(
    conn: Conn,
    coi: str,
    keyring: Keyring | None = None,
    latest: tuple[str, checkpoints.Checkpoint] | None = None,
) -> Verification:
    """`keyring`: the keys to check links with (default: this process's). `latest`: the newest external
    checkpoint as (name, checkpoint), when there is one."""
    ring = record_keys.current() if keyring is None else keyring
    stored = await events.events_of_case(conn, coi)
    head = await cases.chain_state(conn, coi)
    if head is None:
        raise NotFound(f"no case with COI {coi}")
    checked = check_chain(
        [LinkedEvent(e.id, e.prev_hash, e.hash, e.key_id, e.record) for e in stored],
        ring,
        await events.legacy_ceiling(conn),
    )
    broken_dict: dict[str, Any] | None = msgspec.structs.asdict(checked.broken) if checked.broken else None
    if broken_dict is None and (
        head["chain_length"] != len(stored) or (stored and head["chain_head"] != stored[-1].hash)
    ):
        broken_dict = {
            "seq": len(stored),
            "event_id": stored[-1].id if stored else None,
            "reason": "the case's chain head does not match its last event (events removed or added)",
        }
    against = _against_checkpoint(coi, [e.hash for e in stored], ring, latest)
    if broken_dict is None and against is not None and against.get("contradiction"):
        broken_dict = {"seq": len(stored), "event_id": None, "reason": against["contradiction"]}
    units = [msgspec.structs.asdict(u) for u in await cases.units_of_case(conn, coi)]
    legs = [
        {"id": s.id, "status": s.status, "holder_id": s.holder_id} for s in await shipments.of_case(conn, coi)
    ]
    mismatches = [
        msgspec.structs.asdict(m)
        for m in compare(replay([e.record for e in stored]), coi, head["status"], units, legs)
    ]
    corrected = any(e.record.corrects is not None for e in stored)
    if broken_dict is not None:
        status = "broken"
        message = f"the chain breaks at event {broken_dict['seq']}"
    elif mismatches:
        status = "broken"
        first = mismatches[0]
        message = (
            f"the stored state disagrees with the record: {first['object']} {first['id']} {first['field']} "
            f"is {first['stored']!r}, the record says {first['recorded']!r}"
        )
    elif checked.missing_keys:
        status = "unverifiable"
        message = (
            f"unverifiable: {len(checked.unchecked)} events were linked with record keys this server does "
            f"not hold ({', '.join(checked.missing_keys)})"
        )
    else:
        status = "verified"
        message = f"all {len(stored)} events verify"
    if checked.unkeyed and status != "broken":
        message += f"; {len(checked.unkeyed)} legacy events are unkeyed (recorded before record keys)"
    return Verification(
        coi=coi,
        ok=status == "verified",
        status=status,
        events=len(stored),
        head_hash=stored[-1].hash.hex() if stored else None,
        first_break=broken_dict,
        corrected=corrected,
        message=message,
        unkeyed_events=checked.unkeyed,
        key_ids=sorted({e.key_id for e in stored if e.key_id}),
        missing_keys=checked.missing_keys,
        state_mismatches=mismatches,
        checkpoint=against,
    )


def _against_checkpoint(
    coi: str, links: list[bytes], keyring: Keyring, latest: tuple[str, checkpoints.Checkpoint] | None
) -> dict[str, Any] | None:
    if latest is None:
        return None
    name, found = latest
    report: dict[str, Any] = {
        "file": name,
        "created_at": found.body.created_at.isoformat(),
        "authenticity": checkpoints.authenticity(found, keyring),
    }
    entry = checkpoints.entry(found, coi)
    if entry is None:
        report["covers"] = 0
        return report
    report["covers"] = entry.length
    contradiction = checkpoints.chain_against(entry, links)
    if contradiction is not None and report["authenticity"] == "authentic":
        # Only an authentic checkpoint can convict a chain; a forged file proves nothing either way.
        report["contradiction"] = contradiction
    elif contradiction is not None:
        report["disagreement"] = contradiction
    return report


async def resolve_alert(conn: Conn, condition_key: str) -> None:
    alert_id = await alerts.resolve_condition(conn, condition_key, now())
    if alert_id is not None:
        row = await alerts.get(conn, alert_id)
        assert row is not None
        await announce(conn, "alert", row.sites, row.coi, {"id": alert_id, "status": "resolved"})
