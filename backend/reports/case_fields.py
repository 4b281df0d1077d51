"""What the record says of a case's patient: the pseudonymous reference of an ordinary case, or the
trial of an investigational one (its subject identifier is the pseudonym; the record never holds
patient identity)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.repo.cases import CaseRow


class PatientFields(msgspec.Struct, frozen=True):
    patient_ref: str | None
    birth_year: int | None


class TrialFields(msgspec.Struct, frozen=True, kw_only=True):
    """The clinical trial of an investigational case, as its labels print it."""

    register: str
    protocol: str
    site_number: str
    subject: str
    sponsor: str


def patient_fields(case: CaseRow) -> PatientFields | None:
    if case.patient_ref is None and case.birth_year is None:
        return None
    return PatientFields(case.patient_ref, case.birth_year)


def trial_fields(case: CaseRow) -> TrialFields | None:
    """Shown to everyone who may read the record: the subject identifier is a pseudonym, and the
    manufacturer prints it on the trial's labels."""
    trial = case.trial
    return TrialFields(**trial.as_data()) if trial is not None else None


def trial_rows(trial: TrialFields | None) -> list[tuple[str, str]]:
    """The PDF's case table rows of a trial case (none for any other case)."""
    if trial is None:
        return []
    return [
        ("Clinical trial", f"{trial.register} (protocol {trial.protocol}, sponsor {trial.sponsor})"),
        (
            "Trial subject",
            f"subject {trial.subject} at trial site {trial.site_number}; for clinical trial use only",
        ),
    ]
