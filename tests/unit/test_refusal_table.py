"""The API's refusal table (backend/api/refusals.py) answers every refusal code the backend raises, with
the status each refusal was answered with when the refusals carried their own HTTP status."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from backend.api import refusals
from backend.services.scan_outcomes import SEVERAL_SHIPMENTS, UNASSIGNED_SITE, Refused

BACKEND = Path(__file__).resolve().parents[2] / "backend"
_RAISERS = {"Refusal", "ScanRefusal"}

# The statuses the refusals carried themselves, pinned: the table must keep answering them.
ANSWERED = {
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
    "unexpected_item/several_shipments": 422,
    "unknown_item": 422,
    "unknown_receiver": 422,
    "unscanned_items": 409,
    "wristband_required": 422,
    "wrong_role": 403,
    "wrong_shipment": 409,
    "wrong_site": 409,
    "wrong_site/unassigned": 403,
}


def _constants() -> dict[str, set[str]]:
    """Module-level string constants of the backend by name (a code raised as `RECORD_MISMATCH`)."""
    found: dict[str, set[str]] = {}
    for path in BACKEND.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                found.setdefault(node.targets[0].id, set()).add(node.value.value)
    return found


def _literal(node: ast.expr, constants: dict[str, set[str]], where: str) -> str | None:
    """The code a call names, or None when it passes on another refusal's (`refusal.code`)."""
    if isinstance(node, ast.Attribute):
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and len(constants.get(node.id, set())) == 1:
        [value] = constants[node.id]
        return value
    raise AssertionError(f"{where}: a refusal code must be a string literal or a module constant")


def _raised() -> list[tuple[str, int | None, str]]:
    """(table key, status= if a call passes one, where) for every refusal built in backend."""
    constants = _constants()
    raised = []
    for path in sorted(BACKEND.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            where = f"{path.relative_to(BACKEND.parent)}:{node.lineno}"
            keywords = {k.arg: k.value for k in node.keywords}
            if name in _RAISERS and node.args:
                code = _literal(node.args[0], constants, where)
            elif name == "Refused" and "code" in keywords:
                code = _literal(keywords["code"], constants, where)
            else:
                continue
            if code is None:
                continue
            variant = _literal(keywords["variant"], constants, where) if "variant" in keywords else None
            status = keywords.get("status")
            said = (
                status.value if isinstance(status, ast.Constant) and isinstance(status.value, int) else None
            )
            raised.append((refusals.key_of(code, variant), said, where))
    return raised


def test_the_scan_finds_the_refusals() -> None:
    found = {key for key, _status, _where in _raised()}
    assert {"out_of_order", "coi_mismatch", "wrong_site/unassigned", "signature_invalid"} <= found


def test_every_refusal_raised_in_the_backend_has_a_row() -> None:
    missing = sorted({f"{key} ({where})" for key, _s, where in _raised() if key not in refusals.REFUSALS})
    assert not missing, "refusal codes without a row in backend/api/refusals.py: " + ", ".join(missing)


def test_no_refusal_names_an_http_status() -> None:
    """Commands say what was refused; only the API's table says how that is answered in HTTP."""
    named = [where for _key, status, where in _raised() if status is not None]
    assert not named, "a refusal passes status=: " + ", ".join(named)


def test_the_table_answers_the_statuses_the_refusals_carried() -> None:
    assert {key: row.status for key, row in refusals.REFUSALS.items()} == ANSWERED


def test_every_row_is_a_stop_with_the_code_as_its_problem_type() -> None:
    for key, row in refusals.REFUSALS.items():
        assert row.title == "STOP — scan refused"
        assert row.type == "urn:celltrail:problem:" + key.partition("/")[0].replace("_", "-")


@pytest.mark.parametrize(
    ("refused", "status", "problem_type"),
    [
        (Refused(code="out_of_order", detail="d", event_id=7, coi="C"), 409, "out-of-order"),
        (Refused(code="wrong_site", detail="d", variant=UNASSIGNED_SITE), 403, "wrong-site"),
        (Refused(code="unexpected_item", detail="d", variant=SEVERAL_SHIPMENTS), 422, "unexpected-item"),
    ],
)
def test_a_refused_outcome_answers_the_problem_body(refused: Refused, status: int, problem_type: str) -> None:
    assert refusals.refused_body(refused) == {
        "type": f"urn:celltrail:problem:{problem_type}",
        "title": "STOP — scan refused",
        "status": status,
        "detail": "d",
        "errors": [],
        "refusal": refused.code,
        "event_id": refused.event_id,
        "coi": refused.coi,
    }


def test_an_unlisted_code_is_answered_as_a_conflict() -> None:
    assert refusals.problem_of("no_such_code").status == 409
