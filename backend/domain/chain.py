"""The tamper-evident chain: each custody event's SHA-256 covers its canonical encoding and the previous
event's hash, so changing, removing or reordering any stored event breaks every later link."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec


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
    return hashlib.sha256((previous or b"") + canonical(record)).digest()


class Break(msgspec.Struct, frozen=True):
    seq: int
    event_id: int
    reason: str


def first_break(events: list[tuple[int, bytes | None, bytes, EventRecord]]) -> Break | None:
    """`events` as (event_id, stored prev_hash, stored hash, record) in seq order."""
    previous: bytes | None = None
    for index, (event_id, prev_hash, stored, record) in enumerate(events, start=1):
        if record.seq != index:
            return Break(record.seq, event_id, f"sequence gap: expected event {index}, found {record.seq}")
        if prev_hash != previous:
            return Break(record.seq, event_id, "the link to the previous event does not match")
        if event_hash(previous, record) != stored:
            return Break(
                record.seq,
                event_id,
                "the event's content does not match its hash (changed after it was recorded)",
            )
        previous = stored
    return None
