"""How a refused custody step is answered over HTTP: one table from each refusal code to its status and
problem (title and type), and the response built from a command's outcome. The commands know codes, never
statuses (backend/services/scan_outcomes.py); docs/development.md describes the design."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from litestar import Response

from backend.api.errors import problem_fields, problem_json
from backend.services.scan_outcomes import SEVERAL_SHIPMENTS, UNASSIGNED_SITE, Accepted, Outcome, Refused

log = logging.getLogger(__name__)

STOP = "STOP — scan refused"


class RefusalProblem(NamedTuple):
    status: int
    title: str
    type: str


# Refused because of the state of what was scanned (409), because the scan itself is incomplete or
# malformed (422), or because of who scans where (403). A code with variants (scan_outcomes) has a row
# per variant, keyed "code/variant".
_STATUSES: dict[str, int] = {
    "case_closed": 409,
    "coi_mismatch": 409,
    "expired": 409,
    "not_allocated": 409,
    "not_for_patients": 409,
    "not_holder": 409,
    "not_released": 409,
    "out_of_order": 409,
    "quarantined": 409,
    "reason_required": 422,
    "receiver_not_on_route": 422,
    "record_mismatch": 409,
    "same_person": 422,
    "signature_invalid": 422,
    "signature_meaning": 422,
    "signature_required": 422,
    "storage_location_required": 422,
    "thaw_window_exceeded": 409,
    "unexpected_item": 409,
    f"unexpected_item/{SEVERAL_SHIPMENTS}": 422,
    "unknown_item": 422,
    "unknown_receiver": 422,
    "unscanned_items": 409,
    "wristband_required": 422,
    "wrong_role": 403,
    "wrong_shipment": 409,
    "wrong_site": 409,
    f"wrong_site/{UNASSIGNED_SITE}": 403,
}


def _type(key: str) -> str:
    code = key.partition("/")[0]
    return f"urn:celltrail:problem:{code.replace('_', '-')}"


REFUSALS: dict[str, RefusalProblem] = {
    key: RefusalProblem(s, STOP, _type(key)) for key, s in _STATUSES.items()
}

# A refusal code without a row is still answered (the refusal is recorded by then), as the conflict most
# refusals are, and logged so the row is added; the table's test keeps this from happening.
_UNLISTED = 409


def key_of(code: str, variant: str | None = None) -> str:
    return code if variant is None else f"{code}/{variant}"


def problem_of(code: str, variant: str | None = None) -> RefusalProblem:
    key = key_of(code, variant)
    found = REFUSALS.get(key)
    if found is None:
        log.error("refusal code without a row in the refusal table", extra={"refusal": key})
        return RefusalProblem(_UNLISTED, STOP, _type(key))
    return found


def refused_body(refused: Refused) -> dict[str, Any]:
    problem = problem_of(refused.code, refused.variant)
    return problem_fields(
        problem.type,
        problem.title,
        problem.status,
        refused.detail,
        refusal=refused.code,
        event_id=refused.event_id,
        coi=refused.coi,
    )


def answer(outcome: Outcome) -> Response[Any]:
    """A scan's outcome as HTTP: 201 with the recorded step, or the refusal's problem+json."""
    if isinstance(outcome, Accepted):
        return Response(content=outcome, status_code=201, media_type="application/json")
    return problem_json(refused_body(outcome))
