"""The administrative audit trail (append-only; a trigger refuses UPDATE and DELETE). Each entry names the
sites it concerns: QA reads the entries of their sites, administrators all of them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable

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
    sites: list[str]


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
    sites: Iterable[str] | None = None,
) -> None:
    """`sites`: the sites the entry concerns. None lets the database derive them from the entity
    (`audit_entry_sites`, migration 0011): an entity it does not know concerns no site, and an entry of no
    site is read by administrators only. Name them where the writer knows better, e.g. `[]` for global
    administration."""
    await conn.execute(
        """INSERT INTO audit_log
               (actor_id, actor_name, action, entity, entity_id, old_value, new_value, reason, sites)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text[])""",
        actor_id,
        actor_name,
        action,
        entity,
        entity_id,
        old_value,
        new_value,
        reason,
        None if sites is None else sorted(set(sites)),
    )


async def list_for(
    conn: Conn, entity: str | None, entity_id: str | None, limit: int, sites: list[str] | None = None
) -> list[AuditEntry]:
    """Newest first. `sites`: only entries concerning one of them (None: every entry, for administrators);
    an entry of no site never matches a list."""
    rows = await conn.fetch(
        """SELECT id, at, actor_name, action, entity, entity_id, old_value, new_value, reason, sites
           FROM audit_log
           WHERE ($1::text IS NULL OR entity = $1) AND ($2::text IS NULL OR entity_id = $2)
             AND ($4::text[] IS NULL OR sites && $4)
           ORDER BY id DESC LIMIT $3""",
        entity,
        entity_id,
        limit,
        sites,
    )
    return [AuditEntry(**r) for r in rows]
