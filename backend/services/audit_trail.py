"""Reading the administrative audit trail: QA reads the entries of their sites, administrators all.

Entries of no site (global administration: sign-in lockouts of a client address, unknown user names,
network profiles) are for administrators only. Some values are for administrators only too, wherever they
appear: the client address a lockout names and the target of an alert subscription (a webhook URL can
carry a token; an e-mail address is personal data).
"""

from __future__ import annotations

from typing import Any

from backend.db.repo import audit
from backend.db.repo.audit import AuditEntry
from backend.db.types import Pool
from backend.domain.access import Principal, Role
from backend.services.visibility import site_filter

ADMIN_ONLY_KEYS = frozenset({"client", "target"})
HIDDEN = "(administrators only)"


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: HIDDEN if k in ADMIN_ONLY_KEYS else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _for_reader(entry: AuditEntry) -> AuditEntry:
    return AuditEntry(
        id=entry.id,
        at=entry.at,
        actor_name=entry.actor_name,
        action=entry.action,
        entity=entry.entity,
        entity_id=entry.entity_id,
        old_value=_redacted(entry.old_value),
        new_value=_redacted(entry.new_value),
        reason=entry.reason,
        sites=entry.sites,
    )


async def list_entries(
    pool: Pool, principal: Principal, entity: str | None, entity_id: str | None, limit: int
) -> list[AuditEntry]:
    sites = site_filter(principal)
    async with pool.acquire() as conn:
        entries = await audit.list_for(conn, entity, entity_id, limit, sites)
    if Role.ADMIN in principal.roles:
        return entries
    return [_for_reader(e) for e in entries]
