"""The administrative audit trail (append-only; a trigger refuses UPDATE and DELETE)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class AuditEntry(msgspec.Struct, frozen=True):
    id: int
    at: datetime
    actor_name: str
    action: str
    entity: str
    entity_id: str
    old_value: Any
    new_value: Any
    reason: str | None


async def record(
    conn: Conn,
    *,
    actor_id: int | None,
    actor_name: str,
    action: str,
    entity: str,
    entity_id: str,
    old_value: object = None,
    new_value: object = None,
    reason: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO audit_log
               (actor_id, actor_name, action, entity, entity_id, old_value, new_value, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        actor_id,
        actor_name,
        action,
        entity,
        entity_id,
        old_value,
        new_value,
        reason,
    )


async def list_for(conn: Conn, entity: str | None, entity_id: str | None, limit: int) -> list[AuditEntry]:
    rows = await conn.fetch(
        """SELECT id, at, actor_name, action, entity, entity_id, old_value, new_value, reason
           FROM audit_log
           WHERE ($1::text IS NULL OR entity = $1) AND ($2::text IS NULL OR entity_id = $2)
           ORDER BY id DESC LIMIT $3""",
        entity,
        entity_id,
        limit,
    )
    return [AuditEntry(**r) for r in rows]
