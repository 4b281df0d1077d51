"""The tamper-evident chain: each custody event's link covers its canonical encoding and the previous
event's link, so changing, removing or reordering any stored event breaks every later link.

A link is an HMAC-SHA-256 under a record key the database never holds (backend/domain/keyring.py), so
whoever can write the database cannot recompute a chain that verifies. Events recorded before keys were
introduced (migration 0012: key id NULL, event id at most the recorded ceiling) keep their plain SHA-256
link; they verify as before and the verdict names them. A plain link anywhere else is a break: that is
what a chain recomputed without the key looks like."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from backend.domain.keyring import Keyring, RecordKey


class SignatureRecord(msgspec.Struct, frozen=True):
    username: str
    printed_name: str
    meaning: str
    role: str
    signed_at: datetime


class EventRecord(msgspec.Struct, frozen=True):
    """Exactly the fields the hash covers, in a fixed order."""

    coi: str
    seq: int
    action: str
    outcome: str
    refusal: str | None
    detail: str
    shipment_id: str | None
    unit_ids: list[str]
    actor_id: int
    actor_name: str
    site: str
    counterpart_id: int | None
    codes: list[str]
    device_time: datetime | None
    server_time: datetime
    gps: Any
    data: Any
    corrects: int | None
    signatures: list[SignatureRecord]


# Deterministic order makes dict keys (in `data`, `gps`) sorted, so the encoding does not depend on how
# the database returned a jsonb object.
_encoder = msgspec.json.Encoder(order="deterministic")


def utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def canonical(record: EventRecord) -> bytes:
    normalised = msgspec.structs.replace(
        record,
        device_time=utc(record.device_time),
        server_time=utc(record.server_time),
        signatures=[msgspec.structs.replace(s, signed_at=utc(s.signed_at)) for s in record.signatures],
    )
    return _encoder.encode(normalised)


def event_hash(previous: bytes | None, record: EventRecord) -> bytes:
    """The unkeyed (legacy) link: anyone holding the code can compute it."""
    return hashlib.sha256((previous or b"") + canonical(record)).digest()


def keyed_link(key: RecordKey, previous: bytes | None, record: EventRecord) -> bytes:
    # The previous link is 32 bytes or absent (first event) and the encoding starts with '{': the
    # concatenation is unambiguous.
    return key.mac(previous or b"", canonical(record))


class Break(msgspec.Struct, frozen=True):
    seq: int
    event_id: int
    reason: str


class LinkedEvent(msgspec.Struct, frozen=True):
    """A stored event as the chain check needs it."""

    id: int
    prev_hash: bytes | None
    hash: bytes
    key_id: str | None
    record: EventRecord


class ChainCheck(msgspec.Struct, frozen=True):
    broken: Break | None
    # Seqs of legacy events (before keys): they verify only against the plain, recomputable hash.
    unkeyed: list[int]
    # Key ids named by events whose link could not be checked because the keyring lacks them.
    missing_keys: list[str]
    unchecked: list[int]


def check_chain(events: list[LinkedEvent], keyring: Keyring, legacy_ceiling: int) -> ChainCheck:
    """`events` in seq order. `legacy_ceiling`: the largest event id recorded before keys were introduced
    (0 on a database that never had unkeyed events)."""
    previous: bytes | None = None
    unkeyed: list[int] = []
    missing: dict[str, None] = {}
    unchecked: list[int] = []
    seen_keyed = False
    for index, event in enumerate(events, start=1):
        record = event.record

        def broken(reason: str, record: EventRecord = record, event: LinkedEvent = event) -> ChainCheck:
            return ChainCheck(Break(record.seq, event.id, reason), unkeyed, list(missing), unchecked)

        if record.seq != index:
            return broken(f"sequence gap: expected event {index}, found {record.seq}")
        if event.prev_hash != previous:
            return broken("the link to the previous event does not match")
        if event.key_id is None:
            if seen_keyed or event.id > legacy_ceiling:
                return broken(
                    "the event has no keyed link but was recorded after record keys were introduced "
                    "(a chain recomputed without the record key)"
                )
            if event_hash(previous, record) != event.hash:
                return broken("the event's content does not match its hash (changed after it was recorded)")
            unkeyed.append(record.seq)
        else:
            seen_keyed = True
            key = keyring.get(event.key_id)
            if key is None:
                missing[event.key_id] = None
                unchecked.append(record.seq)
            elif keyed_link(key, previous, record) != event.hash:
                return broken(
                    "the event's content does not match its keyed link (changed after it was recorded, "
                    "or linked without the record key)"
                )
        previous = event.hash
    return ChainCheck(None, unkeyed, list(missing), unchecked)
