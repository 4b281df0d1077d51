"""Temperature profiles: who sees them, who proposes a new version and who puts it in force.

A profile belongs to a site (its owner) or to no site (a network profile, seeded by migrations and
administered by administrators). Network profiles are visible to everyone, a site's profiles to the people
of that site; anyone else is answered as for a profile that does not exist.

A new version is proposed by QA of the owner site (an administrator for a network profile) and stays
pending, unused, until a second, different person of the same standing approves it with an e-signature.
New shipments take the newest approved version; a planned shipment keeps the snapshot it was planned with.
Proposals, approvals and refusals are audited, as entries of the owner site.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec

from backend.db.repo import audit
from backend.db.repo import profiles as repo
from backend.db.types import Conn, Pool
from backend.domain.access import Principal, Role
from backend.domain.custody import Refusal
from backend.domain.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from backend.domain.excursions import parse_definition, rules_for
from backend.services import chain, signing
from backend.services.visibility import site_filter

PROFILE_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,40}$")
# The e-signature's meaning: QA releases the version for use, as it releases a product bag. The signing
# service knows a fixed list of meanings (backend/services/signing.py); this one is on it.
APPROVAL_MEANING = "released"


class ProfileView(msgspec.Struct, frozen=True):
    code: str
    version: int
    name: str
    definition: Any
    rules: list[str]
    created_at: datetime
    versions: list[int] = []
    # None: a network profile, administered by administrators.
    owner_site: str | None = None
    # pending (proposed, not used), approved (in force from its approval on) or refused.
    status: str = "approved"
    # The version new shipments take; None while no version is approved.
    approved_version: int | None = None
    proposed_by: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    signature: Any = None


def _described(definition: Any) -> list[str]:
    try:
        return [r.describe() for r in rules_for(parse_definition(definition)).rules]
    except InvalidInput as exc:
        return [f"unreadable definition: {exc.detail}"]


def _view(row: repo.ProfileRow) -> ProfileView:
    return ProfileView(
        code=row.code,
        version=row.version,
        name=row.name,
        definition=row.definition,
        rules=_described(row.definition),
        created_at=row.created_at,
        versions=row.versions,
        owner_site=row.owner_site,
        status=row.status,
        approved_version=row.approved_version,
        proposed_by=row.proposed_by,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
        signature=row.signature,
    )


def _missing(code: str, version: int | None = None) -> NotFound:
    # One wording for a profile that does not exist and one the caller may not see: the two must not be
    # told apart.
    return NotFound(f"no temperature profile {code}" + (f" version {version}" if version else ""))


def _visible(principal: Principal, owner_site: str | None) -> bool:
    return owner_site is None or Role.ADMIN in principal.roles or principal.at_site(owner_site)


def _steward_roles(owner_site: str | None) -> frozenset[Role]:
    return frozenset({Role.ADMIN}) if owner_site is None else frozenset({Role.QA})


def _require_steward(principal: Principal, owner_site: str | None, code: str) -> None:
    """Proposing and deciding are for QA of the owner site; for a network profile, administrators."""
    if owner_site is None:
        if Role.ADMIN not in principal.roles:
            raise PermissionDenied(f"{code} is a network profile: administrators change it")
    elif Role.QA not in principal.roles or not principal.at_site(owner_site):
        raise PermissionDenied(f"versions of {code} are proposed and approved by QA of {owner_site}")


async def _shown(conn: Conn, principal: Principal, code: str, version: int | None) -> ProfileView:
    row = await repo.profile(conn, code, version, site_filter(principal))
    if row is None:
        raise _missing(code, version)
    return _view(row)


async def list_profiles(pool: Pool, principal: Principal, all_versions: bool) -> list[ProfileView]:
    """Each visible profile as the version it stands for (every version with `all_versions`)."""
    async with pool.acquire() as conn:
        return [_view(r) for r in await repo.profiles(conn, all_versions, site_filter(principal))]


async def get_profile(pool: Pool, principal: Principal, code: str, version: int | None) -> ProfileView:
    async with pool.acquire() as conn:
        return await _shown(conn, principal, code, version)


def _new_owner(principal: Principal, site: str | None) -> str | None:
    """The owner of a new code: the site asked for, else the network (administrators) or the proposer's
    only site."""
    if site is not None:
        return site
    if Role.ADMIN in principal.roles:
        return None
    if len(principal.sites) == 1:
        return next(iter(principal.sites))
    raise InvalidInput(
        "name the site that will own the new profile", field_errors={"site": "required for a new profile"}
    )


async def propose_version(
    pool: Pool,
    actor: Principal,
    code: str,
    name: str,
    definition: Any,
    reason: str | None,
    site: str | None = None,
) -> ProfileView:
    """A new version of `code` (version 1 of a new code, owned by `site`), pending until approved."""
    if not PROFILE_CODE.match(code):
        raise InvalidInput(
            "a profile code is 2-41 lowercase letters, digits, '-' or '_'", field_errors={"code": "format"}
        )
    stored = msgspec.to_builtins(parse_definition(definition))
    async with pool.acquire() as conn, conn.transaction():
        await repo.lock_code(conn, code)
        taken = await repo.taken(conn, code)
        if taken is None:
            owner = _new_owner(actor, site)
        elif not _visible(actor, taken.owner_site):
            raise _missing(code)
        else:
            owner = taken.owner_site
            if site is not None and site != owner:
                raise InvalidInput(
                    f"{code} belongs to {owner or 'the network'}; its versions stay there",
                    field_errors={"site": "not the owner"},
                )
        _require_steward(actor, owner, code)
        previous = await repo.profile(conn, code, None, None)
        version = await repo.insert_version(conn, code, name, stored, owner, actor.user_id)
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="create",
            entity="temperature_profile",
            entity_id=f"{code} v{version}",
            old_value=previous.definition if previous else None,
            new_value={"name": name, "definition": stored, "status": "pending", "owner_site": owner},
            reason=reason,
            sites=[owner] if owner else [],
        )
        return await _shown(conn, actor, code, version)


async def _pending(conn: Conn, actor: Principal, code: str, version: int) -> repo.ProfileRow:
    """The version to decide on, locked against a concurrent decision or proposal."""
    await repo.lock_code(conn, code)
    row = await repo.profile(conn, code, version, site_filter(actor))
    if row is None:
        raise _missing(code, version)
    _require_steward(actor, row.owner_site, code)
    if row.status != "pending":
        raise Conflict(f"{code} version {version} is already {row.status}")
    return row


def _signature_refused(refusal: Refusal) -> DomainError:
    # `signing.sign` refuses only with `signature_invalid`: the password, the signer's role or site.
    return InvalidInput(refusal.detail, field_errors={"password": "wrong"})


async def approve_version(
    pool: Pool, actor: Principal, code: str, version: int, *, password: str, reason: str | None
) -> ProfileView:
    """Put a pending version in force, signed by a second person: new shipments take it from now on."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _pending(conn, actor, code, version)
        if row.proposed_by_id == actor.user_id:
            raise PermissionDenied(
                f"you proposed {code} version {version}: a second person approves it (four eyes)"
            )
        approved = await repo.approved_version(conn, code)
        if approved is not None and approved > version:
            raise Conflict(f"{code} version {version} is superseded: version {approved} is approved")
        at = chain.now()
        try:
            signature = await signing.sign(
                conn, actor.username, password, APPROVAL_MEANING, _steward_roles(row.owner_site), at
            )
        except Refusal as refusal:
            raise _signature_refused(refusal) from None
        signed = msgspec.to_builtins(signature)
        await _decide(
            conn,
            actor,
            row,
            version,
            "approved",
            reason,
            signed,
            old_value={"status": "pending", "approved_version": approved},
            new_value={"status": "approved", "signature": signed},
        )
        return await _shown(conn, actor, code, version)


async def refuse_version(
    pool: Pool, actor: Principal, code: str, version: int, *, reason: str
) -> ProfileView:
    """Turn a pending version down for good (its proposer may withdraw it this way too)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _pending(conn, actor, code, version)
        await _decide(
            conn,
            actor,
            row,
            version,
            "refused",
            reason,
            None,
            old_value={"status": "pending"},
            new_value={"status": "refused"},
        )
        return await _shown(conn, actor, code, version)


async def _decide(
    conn: Conn,
    actor: Principal,
    row: repo.ProfileRow,
    version: int,
    status: str,
    reason: str | None,
    signature: Any,
    *,
    old_value: dict[str, Any],
    new_value: dict[str, Any],
) -> None:
    """Record a pending version's decision and its audit entry (approve/refuse, for the owner's sites)."""
    decided = await repo.decide(conn, row.code, version, status, actor.user_id, reason, signature)
    assert decided, "the version was locked as pending"
    await audit.record(
        conn,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action="approve" if status == "approved" else "refuse",
        entity="temperature_profile",
        entity_id=f"{row.code} v{version}",
        old_value=old_value,
        new_value=new_value,
        reason=reason,
        sites=[row.owner_site] if row.owner_site else [],
    )
