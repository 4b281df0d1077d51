"""The administrative audit trail: who changed what, old and new values, and why. QA reads the entries of
their sites, administrators every entry (backend/services/audit_trail.py)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from backend.api.schemas import AuditEntryRead
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import audit_trail


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ("audit",)

    @get("/", opt=policy(Role.ADMIN, Role.QA), operation_id="listAudit")
    async def list_audit(
        self,
        pool: NamedDependency[Pool],
        principal: NamedDependency[Principal],
        entity: FromQuery[str | None] = None,
        entity_id: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[AuditEntryRead]:
        entries = await audit_trail.list_entries(pool, principal, entity, entity_id, limit)
        return [
            AuditEntryRead(
                id=e.id,
                at=e.at,
                actor=e.actor_name,
                action=e.action,
                entity=e.entity,
                entity_id=e.entity_id,
                old_value=e.old_value,
                new_value=e.new_value,
                reason=e.reason,
                sites=e.sites,
            )
            for e in entries
        ]
