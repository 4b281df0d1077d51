"""Investigational cases at creation: the trial a case belongs to, checked, stored with the case and
recorded in its chain. See `backend.domain.trials` for why a trial case holds no patient identity."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from backend.db.repo import cases
from backend.db.types import Conn, Pool
from backend.domain.errors import InvalidInput
from backend.domain.trials import Trial

_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def coi_sequence(number: int) -> str:
    """The COI's six-character sequence: the case number in base 36."""
    digits = ""
    while number:
        number, rest = divmod(number, 36)
        digits = _BASE36[rest] + digits
    return digits.rjust(6, "0")


def check_new_case(trial: Trial | None, patient_ref: str | None, birth_year: int | None) -> None:
    """A trial case names its trial in full and carries no patient reference or birth year: the subject
    identifier is the pseudonym, and who the subject is stays in the trial site's records."""
    if trial is None:
        return
    try:
        trial.check()
    except ValueError as exc:
        raise InvalidInput(f"trial {exc} is not valid", field_errors={f"trial.{exc}": "invalid"}) from None
    if patient_ref is not None or birth_year is not None:
        field = "patient_ref" if patient_ref is not None else "birth_year"
        raise InvalidInput(
            "a clinical trial case is identified by its subject identifier only: it takes no patient "
            "reference or birth year (who the subject is stays in the trial site's records)",
            field_errors={field: "not allowed on a trial case"},
        )


async def attach(conn: Conn, coi: str, trial: Trial | None) -> dict[str, Any]:
    """Store the case's trial (in its creation's transaction); what its `case_created` event records."""
    if trial is None:
        return {}
    await cases.set_trial(conn, coi, trial)
    return {"trial": trial.as_data()}


async def trial_cases(pool: Pool, cois: Iterable[str]) -> frozenset[str]:
    """Which of `cois` (cases the caller has already shown to the reader) belong to a clinical trial:
    the pages mark an investigational case wherever it is listed. The trial fields are pseudonymous, so
    whoever sees a case may see that it is a trial's."""
    wanted = sorted(set(cois))
    if not wanted:
        return frozenset()
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT coi FROM cases WHERE coi = ANY($1::text[]) AND trial_register IS NOT NULL", wanted
        )
    return frozenset(str(row["coi"]) for row in rows)
