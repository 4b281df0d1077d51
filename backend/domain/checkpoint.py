"""External checkpoints: every case's chain head at one moment, with a Merkle root over them, MACed
with the record key and kept outside the database (backend/services/checkpoints.py). A chain that is
later shorter than, or no longer contains, its checkpointed head was cut back or rewritten: deleting the
newest events and resetting the head is caught even by someone who could recompute keyed links.

Pure: encoding, Merkle root, MAC and the comparison of a chain with a checkpoint entry."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.domain.keyring import Keyring, RecordKey

FORMAT = "celltrail-checkpoint/1"
_MAC_LABEL = b"celltrail checkpoint v1\n"


class Head(msgspec.Struct, frozen=True):
    coi: str
    length: int
    head: str  # hex of the last event's link


class Body(msgspec.Struct, frozen=True):
    format: str
    # The database's record (migration 0012): checkpoints of another record are never compared.
    record_id: str
    created_at: datetime
    # The legacy ceiling of migration 0012: lowering or raising it in the database is noticed here.
    legacy_ceiling: int
    key_id: str
    merkle_root: str
    cases: list[Head]


class Checkpoint(msgspec.Struct, frozen=True):
    body: Body
    mac: str


_encoder = msgspec.json.Encoder(order="deterministic")


def _leaf(head: Head) -> bytes:
    # Prefixes keep leaves and inner nodes apart (a leaf can never pass for an inner node).
    return hashlib.sha256(
        b"\x00" + head.coi.encode() + b"\x00" + head.length.to_bytes(8, "big") + bytes.fromhex(head.head)
    ).digest()


def merkle_root(heads: list[Head]) -> str:
    level = [_leaf(h) for h in sorted(heads, key=lambda h: h.coi)]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def make(
    key: RecordKey, record_id: str, created_at: datetime, legacy_ceiling: int, heads: list[Head]
) -> Checkpoint:
    ordered = sorted(heads, key=lambda h: h.coi)
    body = Body(FORMAT, record_id, created_at, legacy_ceiling, key.key_id, merkle_root(ordered), ordered)
    return Checkpoint(body, key.mac(_MAC_LABEL, _encoder.encode(body)).hex())


def encode(checkpoint: Checkpoint) -> bytes:
    return _encoder.encode(checkpoint) + b"\n"


def decode(data: bytes) -> Checkpoint:
    return msgspec.json.decode(data, type=Checkpoint)


def authenticity(checkpoint: Checkpoint, keyring: Keyring) -> str:
    """'authentic', 'forged' (the MAC or the Merkle root does not match) or 'unverifiable' (the key that
    made it is not in the keyring)."""
    key = keyring.get(checkpoint.body.key_id)
    if key is None:
        return "unverifiable"
    expected = key.mac(_MAC_LABEL, _encoder.encode(checkpoint.body)).hex()
    if expected != checkpoint.mac or merkle_root(checkpoint.body.cases) != checkpoint.body.merkle_root:
        return "forged"
    return "authentic"


def entry(checkpoint: Checkpoint, coi: str) -> Head | None:
    return next((h for h in checkpoint.body.cases if h.coi == coi), None)


def chain_against(head: Head, links: list[bytes]) -> str | None:
    """Why the chain (its links in seq order) contradicts the checkpointed head, or None."""
    if len(links) < head.length:
        return (
            f"the chain has {len(links)} events but the checkpoint recorded {head.length}: "
            "events were removed"
        )
    if links[head.length - 1].hex() != head.head:
        return f"event {head.length} is not the one the checkpoint recorded: the chain was rewritten"
    return None
