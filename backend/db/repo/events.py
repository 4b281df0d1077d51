"""Custody events, their signatures, hand-overs, idempotency records and orphan refusals."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from backend.db.repo.outbox import Notice
from backend.domain.chain import EventRecord, SignatureRecord

if TYPE_CHECKING:
    from backend.db.types import Conn


class StoredEvent(msgspec.Struct, frozen=True):
    id: int
    prev_hash: bytes | None
    hash: bytes
    record: EventRecord
    # The record key the link was made with; None for a legacy (unkeyed) event.
    key_id: str | None = None


async def insert_event(
    conn: Conn, record: EventRecord, prev_hash: bytes | None, digest: bytes, key_id: str | None
) -> int:
    """Append the event; the database makes it the case's chain head (the trigger of migration 0013 calls
    `advance_chain_head`, which refuses an event that does not extend the chain: the application role may
    not write `cases.chain_head` itself). The caller holds the case's chain lock."""
    event_id = await conn.fetchval(
        """WITH event AS (
               INSERT INTO custody_events (coi, seq, action, outcome, refusal, detail, shipment_id,
                   unit_ids, actor_id, actor_name, site, counterpart_id, codes, device_time, server_time,
                   gps, data, corrects, prev_hash, hash, key_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                       $19, $20, $21)
               RETURNING id, coi, seq, hash)
           SELECT id FROM event""",
        record.coi,
        record.seq,
        record.action,
        record.outcome,
        record.refusal,
        record.detail,
        record.shipment_id,
        record.unit_ids,
        record.actor_id,
        record.actor_name,
        record.site,
        record.counterpart_id,
        record.codes,
        record.device_time,
        record.server_time,
        record.gps,
        record.data,
        record.corrects,
        prev_hash,
        digest,
        key_id,
    )
    for signature in record.signatures:
        await conn.execute(
            """INSERT INTO signatures (event_id, signer_id, username, printed_name, meaning, role, signed_at)
               VALUES ($1, (SELECT id FROM users WHERE username = $2), $2, $3, $4, $5, $6)""",
            event_id,
            signature.username,
            signature.printed_name,
            signature.meaning,
            signature.role,
            signature.signed_at,
        )
    return int(event_id)


async def events_of_case(conn: Conn, coi: str) -> list[StoredEvent]:
    rows = await conn.fetch(
        """SELECT e.*, COALESCE((SELECT json_agg(json_build_object(
                      'username', s.username, 'printed_name', s.printed_name, 'meaning', s.meaning,
                      'role', s.role, 'signed_at', s.signed_at) ORDER BY s.id)
                   FROM signatures s WHERE s.event_id = e.id), '[]') AS signatures
           FROM custody_events e WHERE e.coi = $1 ORDER BY e.seq""",
        coi,
    )
    events = []
    for r in rows:
        signatures = [msgspec.convert(s, SignatureRecord) for s in r["signatures"]]
        record = EventRecord(
            coi=r["coi"],
            seq=r["seq"],
            action=r["action"],
            outcome=r["outcome"],
            refusal=r["refusal"],
            detail=r["detail"],
            shipment_id=r["shipment_id"],
            unit_ids=list(r["unit_ids"]),
            actor_id=r["actor_id"],
            actor_name=r["actor_name"],
            site=r["site"],
            counterpart_id=r["counterpart_id"],
            codes=list(r["codes"]),
            device_time=r["device_time"],
            server_time=r["server_time"],
            gps=r["gps"],
            data=r["data"],
            corrects=r["corrects"],
            signatures=signatures,
        )
        events.append(StoredEvent(r["id"], r["prev_hash"], r["hash"], record, r["key_id"]))
    return events


async def legacy_ceiling(conn: Conn) -> int:
    """The largest event id that may carry an unkeyed link (migration 0012)."""
    return int(await conn.fetchval("SELECT legacy_max_event_id FROM record_keying"))


async def record_identity(conn: Conn) -> tuple[str, int]:
    """(record id, legacy ceiling) of migration 0012: what a checkpoint names its record by."""
    row = await conn.fetchrow("SELECT record_id::text, legacy_max_event_id FROM record_keying")
    assert row is not None  # migration 0012 writes the one row, and triggers keep it
    return str(row["record_id"]), int(row["legacy_max_event_id"])


async def recorded_values(conn: Conn, event_id: int, names: list[str]) -> dict[str, Any]:
    """What the event recorded under each name: a column of the event, else a key of its data (None where
    it recorded nothing), for the audit trail's old value of a correction."""
    row = await conn.fetchrow(
        """SELECT to_jsonb(e) - 'prev_hash' - 'hash' - 'data' AS fields, e.data
           FROM custody_events e WHERE e.id = $1""",
        event_id,
    )
    if row is None:
        return {}
    fields, data = row["fields"], row["data"]
    fields = fields if isinstance(fields, dict) else msgspec.json.decode(fields)
    data = data if isinstance(data, dict) else msgspec.json.decode(data) if data else {}
    return {name: fields[name] if name in fields else data.get(name) for name in names}


async def event_case(conn: Conn, event_id: int) -> tuple[str, str] | None:
    row = await conn.fetchrow("SELECT coi, action FROM custody_events WHERE id = $1", event_id)
    return (row["coi"], row["action"]) if row else None


async def open_handover(
    conn: Conn,
    shipment_id: str,
    event_id: int,
    giver_id: int,
    receiver_id: int,
    site: str,
    created_at: datetime,
    due_at: datetime,
) -> int:
    return int(
        await conn.fetchval(
            """INSERT INTO handovers (shipment_id, event_id, giver_id, receiver_id, site, created_at, due_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
            shipment_id,
            event_id,
            giver_id,
            receiver_id,
            site,
            created_at,
            due_at,
        )
    )


class HandoverRow(msgspec.Struct, frozen=True):
    id: int
    shipment_id: str
    giver_id: int
    receiver_id: int
    site: str
    due_at: datetime
    confirmed_at: datetime | None


async def get_handover(conn: Conn, handover_id: int, lock: bool = False) -> HandoverRow | None:
    query = "SELECT id, shipment_id, giver_id, receiver_id, site, due_at, confirmed_at FROM handovers WHERE id = $1"
    row = await conn.fetchrow(query + (" FOR UPDATE" if lock else ""), handover_id)
    return HandoverRow(**row) if row else None


async def confirm_handover(conn: Conn, handover_id: int, event_id: int) -> None:
    await conn.execute(
        "UPDATE handovers SET confirmed_at = now(), confirm_event_id = $2 WHERE id = $1",
        handover_id,
        event_id,
    )


async def overdue_handovers(conn: Conn) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT h.id, h.shipment_id, s.coi, s.from_site, s.to_site, h.site, h.due_at,
                  (SELECT username FROM users WHERE id = h.giver_id) AS giver,
                  (SELECT username FROM users WHERE id = h.receiver_id) AS receiver
           FROM handovers h JOIN shipments s ON s.id = h.shipment_id
           WHERE h.confirmed_at IS NULL AND h.due_at < now()"""
    )
    return [dict(r) for r in rows]


class Remembered(NamedTuple):
    """The first answer given to an idempotency key, and a digest of the request it answered (None for
    answers remembered before digests were kept)."""

    actor_id: int
    status: int
    body: Any
    request_digest: bytes | None


async def remembered_request(conn: Conn, key: str) -> Remembered | None:
    row = await conn.fetchrow(
        """SELECT actor_id, status_code, response, request_digest FROM scan_requests
           WHERE idempotency_key = $1""",
        key,
    )
    if row is None:
        return None
    return Remembered(row["actor_id"], row["status_code"], row["response"], row["request_digest"])


async def remembered_answer(conn: Conn, key: str) -> tuple[int, int, Any] | None:
    remembered = await remembered_request(conn, key)
    return (remembered.actor_id, remembered.status, remembered.body) if remembered else None


async def remember_answer(
    conn: Conn,
    key: str,
    actor_id: int,
    status: int,
    response: Any,
    notice: Notice | None = None,
    *,
    request_digest: bytes | None = None,
) -> bool:
    """False when another request with the same key got there first. The scan's outbox notice is written
    by the same statement: one of a scan's nine round trips fewer."""
    remembered = await conn.fetchval(
        """WITH remembered AS (
               INSERT INTO scan_requests (idempotency_key, actor_id, status_code, response, request_digest)
               VALUES ($1, $2, $3, $4, $9) ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1
           ), announced AS (
               INSERT INTO outbox (kind, sites, coi, payload)
               SELECT $5, $6, $7, $8 WHERE $5::text IS NOT NULL AND EXISTS (SELECT FROM remembered)
           )
           SELECT EXISTS (SELECT FROM remembered)""",
        key,
        actor_id,
        status,
        response,
        notice.kind if notice else None,
        notice.sites if notice else None,
        notice.coi if notice else None,
        notice.payload if notice else None,
        request_digest,
    )
    return bool(remembered)


async def record_orphan(
    conn: Conn, actor_id: int, site: str, action: str, codes: list[str], refusal: str, detail: str
) -> int:
    return int(
        await conn.fetchval(
            """INSERT INTO orphan_refusals (actor_id, site, action, codes, refusal, detail)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            actor_id,
            site,
            action,
            codes,
            refusal,
            detail,
        )
    )


async def count_label_prints(conn: Conn, coi: str, label_key: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM custody_events WHERE coi = $1 AND action = 'label_print' AND data->>'label' = $2",
            coi,
            label_key,
        )
    )
