"""Patient identity kept apart (issue 25): a case's patient name, date of birth and hospital number,
sealed with AES-GCM under the patient keyring (backend/services/patient_keys.py) in a table of their own.

Who: the treating site's pharmacists and coordinators (coordinators record it). The case goes through
the object gate first, so a case of another site is answered as one that does not exist; a person who
sees the case but is not at its treating site in one of those roles is refused, and the refusal is in the
audit trail. Why: every read names a reason from a fixed list and is written into the audit trail (who,
when, why, which fields; never a value) in the same transaction that reads, so there is no read without
its entry. Each ciphertext is bound to its case's COI and key id as associated data: a row copied onto
another case does not open there, and the read is refused instead of showing another patient's name.

Nothing else reads this table: exports, EPCIS, records, logs and live streams never hold identity."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import date

import msgspec

from backend.db.repo import audit, patients
from backend.db.repo.cases import CaseRow
from backend.db.types import Conn, Pool
from backend.domain.access import Principal
from backend.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from backend.services import objects, patient_keys, security_log
from backend.services.patient_keys import PatientKeyMissing, PatientKeyring, Unsealable
from backend.services.visibility import sees_patient_fields

log = logging.getLogger(__name__)

_AAD_LABEL = b"celltrail patient identity v1"
# The sealed document is padded to a multiple of this, so its length says little about the name's.
_PAD = 64


class ReadReason(enum.StrEnum):
    """Why someone reads a patient's identity: the audit trail keeps it with each read."""

    BEDSIDE_VERIFICATION = "bedside-verification"
    LABEL_PRINTING = "label-printing"
    CARE_COORDINATION = "care-coordination"
    IDENTITY_CORRECTION = "identity-correction"


class Field(enum.StrEnum):
    """The identity fields, named as the labels package's PatientField (a site's wristband policy)."""

    NAME = "name"
    DATE_OF_BIRTH = "dob"
    HOSPITAL_NUMBER = "hospital-number"


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    date_of_birth: date | None = None
    hospital_number: str | None = None

    def present(self) -> list[Field]:
        values = {
            Field.NAME: self.name,
            Field.DATE_OF_BIRTH: self.date_of_birth,
            Field.HOSPITAL_NUMBER: self.hospital_number,
        }
        return [field for field, value in values.items() if value is not None]


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    """What setting an identity did (never the values)."""

    coi: str
    created: bool
    fields: list[str]
    key_id: str


class IdentityUnreadable(Conflict):
    """The stored identity does not open: altered, copied from another case, or under a key this server
    does not hold. Refused (409), never shown."""


# ---------------------------------------------------------------------------------------- sealing


def associated_data(coi: str, key_id: str) -> bytes:
    # COIs and key ids are fixed-alphabet identifiers without "|": the boundaries are unambiguous.
    return b"|".join((_AAD_LABEL, coi.encode("ascii"), key_id.encode("ascii")))


def seal(keyring: PatientKeyring, coi: str, identity: Identity) -> tuple[str, bytes, bytes]:
    """(key id, nonce, ciphertext) under the keyring's current key."""
    key = keyring.current
    if key is None:
        raise PatientKeyMissing("this process holds no patient key; identity cannot be stored")
    document = msgspec.json.encode(identity)
    document += b" " * (-len(document) % _PAD)
    nonce, ciphertext = key.seal(document, associated_data(coi, key.key_id))
    return key.key_id, nonce, ciphertext


def unseal(keyring: PatientKeyring, sealed: patients.SealedIdentity) -> Identity:
    key = keyring.get(sealed.key_id)
    if key is None:
        raise IdentityUnreadable(
            f"the patient identity of case {sealed.coi} is sealed under key {sealed.key_id}, which is not "
            "in this server's patient keyring; it cannot be read here"
        )
    try:
        document = key.open(sealed.nonce, sealed.ciphertext, associated_data(sealed.coi, sealed.key_id))
        return msgspec.json.decode(document, type=Identity)
    except (Unsealable, msgspec.ValidationError):
        raise IdentityUnreadable(
            f"the patient identity stored for case {sealed.coi} fails its integrity check: it was altered "
            "or belongs to another case. It is not shown; record it again from the hospital's own records"
        ) from None


# ---------------------------------------------------------------------------------------- commands


async def _treating_case(
    pool: Pool, principal: Principal, coi: str, action: str, extra: dict[str, object]
) -> CaseRow:
    """The case through the object gate, then the treating-site rule; a refusal after the gate is kept in
    the audit trail (the case is visible to the refused person, so the entry tells them nothing new)."""
    async with pool.acquire() as conn:
        case = await objects.case(conn, principal, coi)
    if not sees_patient_fields(principal, case.treatment_site):
        why = (
            f"patient identity of case {case.coi} is for the pharmacists and coordinators of its treating "
            f"site {case.treatment_site}"
        )
        await security_log.refused(
            pool, principal, action=action, entity="case", entity_id=case.coi, why=why, what=extra
        )
        raise PermissionDenied(why)
    return case


async def set_identity(pool: Pool, principal: Principal, coi: str, identity: Identity) -> Stored:
    if identity.date_of_birth is not None and identity.date_of_birth > date.today():
        raise InvalidInput(
            "the date of birth is in the future", field_errors={"date_of_birth": "not after today"}
        )
    case = await _treating_case(pool, principal, coi, "patient_identity_set", {"fields": identity.present()})
    if case.trial is not None:
        # Issue 25: a trial subject's identity stays in the trial site's records (docs/product-kinds.md).
        raise Conflict(
            f"case {case.coi} belongs to clinical trial {case.trial.register}: it holds no patient identity "
            f"(subject {case.trial.subject} is its pseudonym; who the subject is stays in the site's records)"
        )
    key_id, nonce, ciphertext = seal(patient_keys.current(), case.coi, identity)
    fields = [str(f) for f in identity.present()]
    async with pool.acquire() as conn, conn.transaction():
        created = await patients.put(conn, case.coi, key_id, nonce, ciphertext, principal.user_id)
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action="patient_identity_set" if created else "patient_identity_updated",
            entity="case",
            entity_id=case.coi,
            new_value={"fields": fields, "key_id": key_id},
            sites=[case.treatment_site],
        )
    return Stored(coi=case.coi, created=created, fields=fields, key_id=key_id)


async def _read_logged(
    conn: Conn, principal: Principal, case: CaseRow, reason: ReadReason, fields: list[Field] | None
) -> Identity | None:
    """Open the case's identity and write the read into the audit trail, on the caller's transaction.
    `fields`: the fields the caller will use (None: all)."""
    sealed = await patients.get(conn, case.coi)
    identity = unseal(patient_keys.current(), sealed) if sealed is not None else None
    read = identity.present() if identity is not None else []
    if fields is not None:
        read = [f for f in read if f in fields]
    await audit.record(
        conn,
        actor_id=principal.user_id,
        actor_name=principal.username,
        action="patient_identity_read",
        entity="case",
        entity_id=case.coi,
        new_value={"reason": str(reason), "fields": [str(f) for f in read], "recorded": identity is not None},
        reason=str(reason),
        sites=[case.treatment_site],
    )
    return identity


async def read_identity(
    pool: Pool, principal: Principal, coi: str, reason: ReadReason | None
) -> Identity | None:
    """The case's identity (None when none is recorded); the read is in the audit trail either way. The
    reason is checked after the gate, so a missing one answers another site exactly as a missing case."""
    case = await _treating_case(pool, principal, coi, "patient_identity_read", {"reason": str(reason)})
    if reason is None:
        raise InvalidInput(
            f"say why you read the patient's identity: reason is one of {', '.join(ReadReason)}",
            field_errors={"reason": "required"},
        )
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await _read_logged(conn, principal, case, reason, None)
    except IdentityUnreadable as exc:
        await _unreadable(pool, principal, case, reason, exc)
        raise


async def for_wristband(
    pool: Pool, principal: Principal, case: CaseRow
) -> tuple[list[Field], Identity | None]:
    """The fields the treating site's wristband policy prints and the identity to fill them from (read
    with reason label printing and logged); ([], None) when the policy prints none. Someone who may not
    read the identity may not print a band that carries it."""
    async with pool.acquire() as conn:
        policy = await patients.wristband_fields(conn, case.treatment_site)
    fields = [Field(f) for f in policy or []]
    if not fields:
        return [], None
    await _treating_case(pool, principal, case.coi, "patient_identity_read", {"reason": "label-printing"})
    reason = ReadReason.LABEL_PRINTING
    try:
        async with pool.acquire() as conn, conn.transaction():
            identity = await _read_logged(conn, principal, case, reason, fields)
    except IdentityUnreadable as exc:
        await _unreadable(pool, principal, case, reason, exc)
        raise
    if identity is None:
        raise Conflict(
            f"site {case.treatment_site}'s wristband policy prints {', '.join(fields)}, and no patient "
            f"identity is recorded for case {case.coi}: a coordinator records it first"
        )
    return fields, identity


async def _unreadable(
    pool: Pool, principal: Principal, case: CaseRow, reason: ReadReason, exc: IdentityUnreadable
) -> None:
    log.warning("patient identity refused: it does not open", extra={"coi": case.coi})
    await security_log.refused(
        pool,
        principal,
        action="patient_identity_read",
        entity="case",
        entity_id=case.coi,
        why=exc.detail,
        what={"reason": str(reason)},
    )


# ---------------------------------------------------------------------------------------- rotation


class Resealed(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    resealed: int
    unreadable: list[str]


async def reseal_all(
    pool: Pool, keyring: PatientKeyring, progress: Callable[[int, int], None] | None = None, batch: int = 200
) -> Resealed:
    """Re-encrypt every identity sealed under an older key with the keyring's current key. A row that
    does not open (altered, or its key is gone) is left as it is and named; none is lost. `progress` is
    called with (done, total) after each batch."""
    key = keyring.current
    if key is None:
        raise PatientKeyMissing("the patient keyring holds no key")
    async with pool.acquire() as conn:
        total = await patients.count_not_under(conn, key.key_id)
    done, after, unreadable = 0, "", []
    if progress is not None:
        progress(0, total)
    while True:
        async with pool.acquire() as conn:
            rows = await patients.batch_not_under(conn, key.key_id, after, batch)
            if not rows:
                break
            async with conn.transaction():
                for sealed in rows:
                    try:
                        identity = unseal(keyring, sealed)
                    except IdentityUnreadable:
                        unreadable.append(sealed.coi)
                        continue
                    key_id, nonce, ciphertext = seal(keyring, sealed.coi, identity)
                    if await patients.reseal(conn, sealed.coi, sealed.key_id, key_id, nonce, ciphertext):
                        done += 1
        after = rows[-1].coi
        if progress is not None:
            progress(done + len(unreadable), total)
    return Resealed(key_id=key.key_id, resealed=done, unreadable=unreadable)


# ---------------------------------------------------------------------------------------- wristband policy


async def wristband_policy(pool: Pool, site: str) -> list[Field]:
    async with pool.acquire() as conn:
        fields = await patients.wristband_fields(conn, site)
    if fields is None:
        raise NotFound(f"no site {site}")
    return [Field(f) for f in fields]


async def set_wristband_policy(
    pool: Pool, principal: Principal, site: str, fields: list[Field]
) -> list[Field]:
    """Which identity fields the site's wristbands print (in the order name, dob, hospital-number)."""
    chosen = [f for f in Field if f in fields]
    async with pool.acquire() as conn, conn.transaction():
        before = await patients.set_wristband_fields(conn, site, [str(f) for f in chosen])
        if before is None:
            raise NotFound(f"no site {site}")
        await audit.record(
            conn,
            actor_id=principal.user_id,
            actor_name=principal.username,
            action="wristband_policy_set",
            entity="site",
            entity_id=site,
            old_value={"wristband_fields": before},
            new_value={"wristband_fields": [str(f) for f in chosen]},
            sites=[site],
        )
    return chosen
