"""Verifying a case's chain: every link, the head, the stored states against the record, and the latest
external checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from backend.db.repo import cases, events, shipments
from backend.domain import checkpoint as checkpoints
from backend.domain.chain import LinkedEvent, check_chain
from backend.domain.errors import NotFound
from backend.domain.keyring import Keyring
from backend.domain.replay import compare, replay
from backend.services import record_keys

if TYPE_CHECKING:
    from backend.db.types import Conn


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
    against = _against_checkpoint(coi, [e.hash for e in stored], ring, latest)
    broken_dict = _first_break(checked.broken, head, stored, against)
    units = [msgspec.structs.asdict(u) for u in await cases.units_of_case(conn, coi)]
    legs = [
        {"id": s.id, "status": s.status, "holder_id": s.holder_id} for s in await shipments.of_case(conn, coi)
    ]
    mismatches = [
        msgspec.structs.asdict(m)
        for m in compare(replay([e.record for e in stored]), coi, head["status"], units, legs)
    ]
    corrected = any(e.record.corrects is not None for e in stored)
    status, message = _verdict(
        broken_dict, mismatches, checked.missing_keys, len(checked.unchecked), len(stored)
    )
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


def _first_break(
    broken: Any, head: dict[str, Any], stored: list[Any], against: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Where the chain breaks: a link, else a head that is not its last event's, else an authentic
    checkpoint it contradicts; None when it holds."""
    if broken is not None:
        found: dict[str, Any] = msgspec.structs.asdict(broken)
        return found
    if head["chain_length"] != len(stored) or (stored and head["chain_head"] != stored[-1].hash):
        return {
            "seq": len(stored),
            "event_id": stored[-1].id if stored else None,
            "reason": "the case's chain head does not match its last event (events removed or added)",
        }
    if against is not None and against.get("contradiction"):
        return {"seq": len(stored), "event_id": None, "reason": against["contradiction"]}
    return None


def _verdict(
    broken: dict[str, Any] | None,
    mismatches: list[dict[str, Any]],
    missing_keys: list[str],
    unchecked: int,
    events: int,
) -> tuple[str, str]:
    if broken is not None:
        return "broken", f"the chain breaks at event {broken['seq']}"
    if mismatches:
        first = mismatches[0]
        return "broken", (
            f"the stored state disagrees with the record: {first['object']} {first['id']} {first['field']} "
            f"is {first['stored']!r}, the record says {first['recorded']!r}"
        )
    if missing_keys:
        return "unverifiable", (
            f"unverifiable: {unchecked} events were linked with record keys this server does "
            f"not hold ({', '.join(missing_keys)})"
        )
    return "verified", f"all {events} events verify"


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
