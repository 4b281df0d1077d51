"""The outbox feeding live streams. A trigger NOTIFYs `celltrail_outbox` with each new id."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn

CHANNEL = "celltrail_outbox"
# Ids are numbered when a row is written and become visible when its transaction commits, so a reader can
# see an id while a lower one is still uncommitted. A missing id below a row newer than this is a
# transaction that may still commit: readers stop before it. Older, it is taken for rolled back (a
# transaction writes its outbox row last, just before it commits).
SETTLE_SECONDS = 5.0
# Only the newest ids are examined for such gaps: one further back is long settled.
SETTLE_WINDOW = 10_000


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
    alert notice carries the alert's id). Stops before an id that may still commit (SETTLE_SECONDS): a
    reader never passes a lower id that becomes visible after a higher one."""
    rows = await conn.fetch(
        """WITH unsettled AS (
               SELECT min(r.id - 1) AS id FROM outbox r
                WHERE r.id > $1 + 1 AND r.id > (SELECT max(id) FROM outbox) - $6
                  AND r.created_at > clock_timestamp() - make_interval(secs => $5)
                  AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.id = r.id - 1))
           SELECT o.id, o.kind, o.sites, o.coi, o.payload, o.created_at FROM outbox o
           WHERE o.id > $1 AND o.id < COALESCE((SELECT id FROM unsettled), 9223372036854775807)
             AND ($2::text[] IS NULL OR o.sites && $2
                 OR (o.kind = 'alert' AND $4::text IS NOT NULL AND EXISTS (
                         SELECT 1 FROM alerts a JOIN shipments s ON s.id = a.shipment_id
                          WHERE a.id::text = o.payload->>'id' AND s.courier_organisation = $4)))
           ORDER BY o.id LIMIT $3""",
        last_id,
        sites,
        limit,
        courier,
        SETTLE_SECONDS,
        SETTLE_WINDOW,
    )
    return [OutboxRow(**r) for r in rows]


async def latest_id(conn: Conn) -> int:
    """Where a new stream starts: before any id that may still commit, else after the last."""
    return int(
        await conn.fetchval(
            """SELECT COALESCE(
                   (SELECT min(r.id - 1) - 1 FROM outbox r
                     WHERE r.id > (SELECT max(id) FROM outbox) - $2
                       AND r.id - 1 > (SELECT min(id) FROM outbox)
                       AND r.created_at > clock_timestamp() - make_interval(secs => $1)
                       AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.id = r.id - 1)),
                   (SELECT max(id) FROM outbox), 0)""",
            SETTLE_SECONDS,
            SETTLE_WINDOW,
        )
    )
