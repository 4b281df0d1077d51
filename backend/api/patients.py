"""Patient identity of a case (issue 25): PUT records or replaces it (a coordinator of the treating site);
GET reads it, naming why — the read is in the audit trail. Both are for the treating site only; a case
of another site answers as one that does not exist. Answers are never cached."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final

import msgspec
from litestar import Response, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from backend.api.schemas import Command
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import patient_identity
from backend.services.patient_identity import Identity, ReadReason

NO_STORE: Final = {"Cache-Control": "no-store"}
# Printable text only: a line break or a control character in a name would print as something else.
_PRINTABLE = r"^[^\x00-\x1f\x7f]{1,200}$"


class PatientIdentityWrite(Command):
    name: Annotated[str, msgspec.Meta(pattern=_PRINTABLE, max_length=200, examples=["Anna Muster"])]
    date_of_birth: date | None = None
    hospital_number: (
        Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,39}$", examples=["USZ-0012345"])]
        | None
    ) = None


class PatientIdentityStored(msgspec.Struct, kw_only=True):
    coi: str
    created: bool
    fields: list[str]
    key_id: str


class PatientIdentityRead(msgspec.Struct, kw_only=True):
    coi: str
    recorded: bool
    reason: str
    name: str | None = None
    date_of_birth: date | None = None
    hospital_number: str | None = None


@put(
    "/api/v1/cases/{coi:str}/patient",
    operation_id="setPatientIdentity",
    tags=["patients"],
    opt=policy(Role.COORDINATOR),
    status_code=HTTP_200_OK,
)
async def set_patient_identity(
    coi: FromPath[str],
    data: JSONBody[PatientIdentityWrite],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
) -> Response[PatientIdentityStored]:
    """Record or replace the patient's name, date of birth and hospital number (encrypted at rest; the
    answer names the fields stored and the key, never the values)."""
    identity = Identity(
        name=data.name, date_of_birth=data.date_of_birth, hospital_number=data.hospital_number
    )
    stored = await patient_identity.set_identity(pool, principal, coi, identity)
    body = PatientIdentityStored(
        coi=stored.coi, created=stored.created, fields=stored.fields, key_id=stored.key_id
    )
    return Response(body, headers=NO_STORE)


@get(
    "/api/v1/cases/{coi:str}/patient",
    operation_id="readPatientIdentity",
    tags=["patients"],
    opt=policy(Role.PHARMACIST, Role.COORDINATOR),
)
async def read_patient_identity(
    coi: FromPath[str],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    # Optional here, required by the service once the case is through the gate: a missing reason must not
    # tell someone of another site apart from a case that does not exist.
    reason: Annotated[
        ReadReason | None, QueryParameter(description="why the identity is read (kept in the audit trail)")
    ] = None,
) -> Response[PatientIdentityRead]:
    """The patient's identity, for the treating site's pharmacists and coordinators; `reason` is one of
    bedside-verification, label-printing, care-coordination, identity-correction."""
    identity = await patient_identity.read_identity(pool, principal, coi, reason)
    body = PatientIdentityRead(coi=coi, recorded=False, reason=str(reason))
    if identity is not None:
        body = PatientIdentityRead(
            coi=coi,
            recorded=True,
            reason=str(reason),
            name=identity.name,
            date_of_birth=identity.date_of_birth,
            hospital_number=identity.hospital_number,
        )
    return Response(body, headers=NO_STORE)


ROUTES = (set_patient_identity, read_patient_identity)
