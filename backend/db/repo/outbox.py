"""The outbox feeding live streams. A trigger NOTIFYs `celltrail_outbox` with each new id."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn

CHANNEL = "celltrail_outbox"


class OutboxRow(msgspec.Struct, frozen=True):
    id: int
    kind: str
    sites: list[str]
    coi: str | None
    payload: Any
    created_at: datetime


class Notice(msgspec.Struct, frozen=True):
    """A row for the outbox not yet written: a caller with a statement of its own to send at the end of
    its transaction writes it in that statement (see events.remember_answer)."""

    kind: str
    sites: list[str]
    coi: str | None
    payload: Any

    @classmethod
    def of(cls, kind: str, sites: list[str], coi: str | None, payload: Any) -> Notice:
        return cls(kind, sorted(set(sites)), coi, payload)


async def publish(conn: Conn, kind: str, sites: list[str], coi: str | None, payload: Any) -> int:
    notice = Notice.of(kind, sites, coi, payload)
    return int(
        await conn.fetchval(
            "INSERT INTO outbox (kind, sites, coi, payload) VALUES ($1, $2, $3, $4) RETURNING id",
            notice.kind,
            notice.sites,
            notice.coi,
            notice.payload,
        )
    )


async def after(
    conn: Conn, last_id: int, sites: list[str] | None, limit: int = 500, courier: str | None = None
) -> list[OutboxRow]:
    """`courier`: a courier company, whose assigned legs' alerts come besides those of `sites` (every
    alert notice carries the alert's id)."""
    rows = await conn.fetch(
        """SELECT o.id, o.kind, o.sites, o.coi, o.payload, o.created_at FROM outbox o
           WHERE o.id > $1 AND ($2::text[] IS NULL OR o.sites && $2
                 OR (o.kind = 'alert' AND $4::text IS NOT NULL AND EXISTS (
                         SELECT 1 FROM alerts a JOIN shipments s ON s.id = a.shipment_id
                          WHERE a.id::text = o.payload->>'id' AND s.courier_organisation = $4)))
           ORDER BY o.id LIMIT $3""",
        last_id,
        sites,
        limit,
        courier,
    )
    return [OutboxRow(**r) for r in rows]


async def latest_id(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT COALESCE(max(id), 0) FROM outbox"))
