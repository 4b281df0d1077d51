"""Dead letters: messages nobody could turn into readings, kept whole for review."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class DeadLetterRow(msgspec.Struct, frozen=True, kw_only=True):
    origin: str  # bridge | reading | status
    item_index: int
    kind: str
    reason: str
    topic: str | None
    payload: bytes
    logger_id: str | None
    reading_ts: datetime | None
    received_at: datetime


class StoredDeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    batch_id: str
    bridge_id: str
    origin: str
    kind: str
    reason: str
    topic: str | None
    payload: bytes
    logger_id: str | None
    reading_ts: datetime | None
    received_at: datetime
    stored_at: datetime


async def insert_many(conn: Conn, batch_id: str, bridge_id: str, rows: list[DeadLetterRow]) -> list[str]:
    """Store what is new; return the kinds of the rows actually added (a retried batch adds none)."""
    if not rows:
        return []
    added = await conn.fetch(
        """INSERT INTO dead_letters (batch_id, bridge_id, origin, item_index, kind, reason, topic, payload,
                                     logger_id, reading_ts, received_at)
           SELECT $1, $2, u.* FROM unnest($3::text[], $4::integer[], $5::text[], $6::text[], $7::text[],
                                          $8::bytea[], $9::text[], $10::timestamptz[], $11::timestamptz[]) AS u
           ON CONFLICT DO NOTHING
           RETURNING kind""",
        batch_id,
        bridge_id,
        [r.origin for r in rows],
        [r.item_index for r in rows],
        [r.kind for r in rows],
        [r.reason for r in rows],
        [r.topic for r in rows],
        [r.payload for r in rows],
        [r.logger_id for r in rows],
        [r.reading_ts for r in rows],
        [r.received_at for r in rows],
    )
    return [r["kind"] for r in added]


async def recent(conn: Conn, logger_id: str | None, limit: int) -> list[StoredDeadLetter]:
    rows = await conn.fetch(
        """SELECT id, batch_id, bridge_id, origin, kind, reason, topic, payload, logger_id, reading_ts,
                  received_at, stored_at
           FROM dead_letters
           WHERE ($1::text IS NULL OR logger_id = $1)
           ORDER BY id DESC LIMIT $2""",
        logger_id,
        limit,
    )
    return [StoredDeadLetter(**r) for r in rows]
