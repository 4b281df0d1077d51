"""A resent scan is answered from the outcome remembered for its idempotency key; a key reused by
someone else or for another request is refused, and kept in the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from backend.db.repo import audit, events
from backend.domain.errors import Conflict, DomainError, InvalidInput
from backend.services.scan_outcomes import SEVERAL_SHIPMENTS, UNASSIGNED_SITE, Outcome, Refused

if TYPE_CHECKING:
    from backend.db.types import Conn
    from backend.domain.access import Principal
    from backend.services.scans import ScanCommand

# The status column of a remembered scan: its outcome is stored as it is and the API answers it. Rows
# remembered before outcomes were stored hold the HTTP status and body instead (see `_outcome`).
OUTCOME_STORED = 0


class _LegacyProblem(msgspec.Struct):
    refusal: str
    detail: str
    event_id: int | None = None
    coi: str | None = None


# The variants of a refusal code (scan_outcomes) that older rows can only tell by their HTTP status.
_LEGACY_VARIANTS = {("wrong_site", 403): UNASSIGNED_SITE, ("unexpected_item", 422): SEVERAL_SHIPMENTS}


def _outcome(status: int, body: Any) -> Outcome | None:
    """The remembered outcome, or None when the key answered something other than a scan."""
    try:
        if status == OUTCOME_STORED or status < 400:
            # An accepted scan's body was its outcome already, tag included.
            outcome: Outcome = msgspec.convert(body, Outcome)
            return outcome
        problem = msgspec.convert(body, _LegacyProblem)
    except msgspec.ValidationError:
        return None
    return Refused(
        code=problem.refusal,
        detail=problem.detail,
        event_id=problem.event_id,
        coi=problem.coi,
        variant=_LEGACY_VARIANTS.get((problem.refusal, status)),
    )


async def replay(
    conn: Conn, actor: Principal, command: ScanCommand, remembered: events.Remembered
) -> Outcome:
    """The first outcome again for a resend of the same request; a key reused by someone else or for a
    different request is refused (and kept in the audit trail: a client that reuses keys loses scans)."""
    error: DomainError
    outcome = _outcome(remembered.status, remembered.body)
    if remembered.actor_id != actor.user_id:
        why = "another user"
        error = Conflict("this idempotency key was already used by someone else; generate a new key per scan")
    elif outcome is None or remembered.request_digest not in (None, command.request_digest()):
        why = "a different request"
        error = InvalidInput(
            "this idempotency key was already used for a different request; generate a new key per scan "
            "(only a resend of the very same scan may reuse its key)"
        )
    else:
        return outcome
    await audit.record(
        conn,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="idempotency_key_refused",
        entity="scan_request",
        entity_id=command.idempotency_key,
        new_value={"action": command.action, "site": command.site, "codes": command.codes, "why": why},
        reason=f"idempotency key already used by {why}",
        sites=[command.site] if actor.at_site(command.site) else [],
    )
    raise error
