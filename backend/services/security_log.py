"""Refused attempts that are not custody steps, kept in the audit trail with who, when, what and why: a
route the caller's role or site does not allow, a hand-over confirmed by someone who is not its receiver.
(Refused signatures and reused idempotency keys are kept where they are decided: services/signing.py and
services/scans.py.) Written on a connection of its own and committed at once, because the request that
was refused rolls back whatever else it did."""

from __future__ import annotations

import logging

from backend.db.repo import audit
from backend.db.types import Pool
from backend.domain.access import Principal

log = logging.getLogger(__name__)


async def refused(
    pool: Pool,
    actor: Principal,
    *,
    action: str,
    entity: str,
    entity_id: str,
    why: str,
    what: dict[str, object],
) -> None:
    """One audit entry for a refusal, filed under the actor's own sites (their QA reads it; it names
    nothing the actor could not already see, since it holds only what they asked for)."""
    async with pool.acquire() as conn:
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action=action,
            entity=entity,
            entity_id=entity_id,
            new_value=what | {"why": why},
            reason=why,
            sites=sorted(actor.sites),
        )
    log.warning("refused", extra={"action": action, "entity": entity})
