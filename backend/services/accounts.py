"""Users and sites: creation, changes and the first administrator. Every change is audited."""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backend.db.repo import audit, sites, tokens, users
from backend.db.repo.sites import SiteRow
from backend.db.repo.users import UserRow
from backend.db.types import Pool
from backend.domain.access import Principal, Role
from backend.domain.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from backend.services.passwords import hash_password, verify_password
from celltrail_shared.identifiers import Gln, IdentifierError

log = logging.getLogger(__name__)

ADMIN_USERNAME = "admin"
HQ_SITE = SiteRow(code="HQ", name="Celltrail administration", kind="courier_depot", time_zone="UTC", gln=None)


def _public(user: UserRow) -> dict[str, object]:
    return {
        "username": user.username,
        "full_name": user.full_name,
        "active": user.active,
        "roles": user.roles,
        "sites": user.sites,
    }


def _check_roles(roles: list[str]) -> list[str]:
    if not roles:
        raise InvalidInput("a user needs at least one role", field_errors={"roles": "at least one role"})
    unknown = sorted(set(roles) - {r.value for r in Role})
    if unknown:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(
            f"unknown role {', '.join(unknown)}; choose from {allowed}",
            field_errors={"roles": f"unknown: {', '.join(unknown)}"},
        )
    return sorted(set(roles))


async def _check_sites(conn: Any, codes: list[str]) -> list[str]:
    if not codes:
        raise InvalidInput(
            "a user must be bound to at least one site", field_errors={"sites": "at least one"}
        )
    missing = sorted(set(codes) - await sites.existing(conn, codes))
    if missing:
        raise InvalidInput(
            f"unknown site {', '.join(missing)}; create the site first",
            field_errors={"sites": f"unknown: {', '.join(missing)}"},
        )
    return sorted(set(codes))


async def create_user(
    pool: Pool,
    actor: Principal | None,
    *,
    username: str,
    full_name: str,
    password: str,
    roles: list[str],
    site_codes: list[str],
) -> UserRow:
    role_list = _check_roles(roles)
    password_hash = hash_password(password, username)
    name = username.strip().lower()
    async with pool.acquire() as conn, conn.transaction():
        site_list = await _check_sites(conn, site_codes)
        user_id = await users.insert(conn, name, full_name, password_hash)
        if user_id is None:
            raise Conflict(f"the username {name} is taken", field_errors={"username": "taken"})
        await users.set_roles(conn, user_id, role_list)
        await users.set_sites(conn, user_id, site_list)
        created = await users.by_id(conn, user_id)
        assert created is not None
        await audit.record(
            conn,
            actor_id=actor.user_id if actor else None,
            actor_name=actor.username if actor else "system",
            action="create",
            entity="user",
            entity_id=name,
            new_value=_public(created),
        )
    return created


async def update_user(
    pool: Pool,
    actor: Principal,
    username: str,
    *,
    full_name: str | None,
    active: bool | None,
    roles: list[str] | None,
    site_codes: list[str] | None,
    reason: str,
) -> UserRow:
    async with pool.acquire() as conn, conn.transaction():
        before = await users.by_username(conn, username)
        if before is None:
            raise NotFound(f"no user named {username}")
        if before.id == actor.user_id and active is False:
            raise Conflict("you cannot deactivate your own account")
        await users.update_profile(
            conn, before.id, full_name or before.full_name, before.active if active is None else active
        )
        if roles is not None:
            await users.set_roles(conn, before.id, _check_roles(roles))
        if site_codes is not None:
            await users.set_sites(conn, before.id, await _check_sites(conn, site_codes))
        if active is False:
            await tokens.revoke_all_for(conn, before.id)
        after = await users.by_id(conn, before.id)
        assert after is not None
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="update",
            entity="user",
            entity_id=username,
            old_value=_public(before),
            new_value=_public(after),
            reason=reason,
        )
    return after


async def change_password(
    pool: Pool, actor: Principal, username: str, *, current: str | None, new: str, reason: str
) -> int:
    """Set a new password and revoke every token of that user; returns how many were revoked."""
    # Hashed before the transaction (Argon2 is slow); a weak new password is refused only after the
    # current one is checked, so a wrong current password is answered as such whatever the new one.
    weak: InvalidInput | None = None
    try:
        new_hash = hash_password(new, username)
    except InvalidInput as exc:
        new_hash, weak = "", exc
    async with pool.acquire() as conn, conn.transaction():
        user = await users.by_username(conn, username)
        if user is None:
            raise NotFound(f"no user named {username}")
        if user.id == actor.user_id or Role.ADMIN not in actor.roles:
            if user.id != actor.user_id:
                raise NotFound(f"no user named {username}")
            if current is None or not verify_password(user.password_hash, current):
                raise AuthenticationFailed(
                    "the current password is wrong", field_errors={"current_password": "wrong"}
                )
        if weak is not None:
            raise weak
        await users.set_password(conn, user.id, new_hash)
        revoked = await tokens.revoke_all_for(conn, user.id)
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="password_change",
            entity="user",
            entity_id=username,
            reason=reason,
        )
    return revoked


async def list_users(pool: Pool, site: str | None = None) -> list[UserRow]:
    async with pool.acquire() as conn:
        return await users.list_all(conn, site)


async def get_user(pool: Pool, username: str) -> UserRow:
    for user in await list_users(pool):
        if user.username == username:
            return user
    raise NotFound(f"no user named {username}")


def _check_site(site: SiteRow) -> None:
    try:
        ZoneInfo(site.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {site.time_zone!r}; use an IANA name such as Europe/Zurich",
            field_errors={"time_zone": "not an IANA time zone"},
        ) from None
    if site.gln is not None:
        try:
            Gln(site.gln)
        except IdentifierError as exc:
            raise InvalidInput(str(exc), field_errors={"gln": exc.reason}) from None


async def create_site(pool: Pool, actor: Principal | None, site: SiteRow) -> SiteRow:
    _check_site(site)
    async with pool.acquire() as conn, conn.transaction():
        if not await sites.insert(conn, site):
            raise Conflict(f"a site with code {site.code} exists", field_errors={"code": "taken"})
        await audit.record(
            conn,
            actor_id=actor.user_id if actor else None,
            actor_name=actor.username if actor else "system",
            action="create",
            entity="site",
            entity_id=site.code,
            new_value={"name": site.name, "kind": site.kind, "time_zone": site.time_zone, "gln": site.gln},
        )
    return site


async def add_site(
    pool: Pool, actor: Principal | None, *, code: str, name: str, kind: str, time_zone: str, gln: str | None
) -> SiteRow:
    """Create a site from its fields (the API's command); see create_site."""
    site = SiteRow(code=code, name=name, kind=kind, time_zone=time_zone, gln=gln)
    return await create_site(pool, actor, site)


async def get_site(pool: Pool, code: str) -> SiteRow:
    async with pool.acquire() as conn:
        site = await sites.get(conn, code)
    if site is None:
        raise NotFound(f"no site with code {code}")
    return site


async def list_sites(pool: Pool) -> list[SiteRow]:
    async with pool.acquire() as conn:
        return await sites.list_all(conn)


async def ensure_first_admin(pool: Pool, password: str | None) -> bool:
    """On a database without users, create `admin` with CELLTRAIL_ADMIN_PASSWORD. True when created."""
    async with pool.acquire() as conn:
        if await users.count(conn) > 0:
            return False
    if not password:
        log.warning("no users exist and CELLTRAIL_ADMIN_PASSWORD is not set: nobody can sign in yet")
        return False
    async with pool.acquire() as conn:
        if await sites.get(conn, HQ_SITE.code) is None:
            await sites.insert(conn, HQ_SITE)
    try:
        await create_user(
            pool,
            None,
            username=ADMIN_USERNAME,
            full_name="Administrator",
            password=password,
            roles=[Role.ADMIN.value],
            site_codes=[HQ_SITE.code],
        )
    except Conflict:
        return False  # another replica seeded it first
    log.info("created the first administrator", extra={"username": ADMIN_USERNAME})
    return True


async def ensure_service_account(pool: Pool, username: str, password: str) -> None:
    """The local firmware bridge's account (role `bridge`): created once, its password kept in step with
    the secret `celltrail up` holds in the data directory."""
    async with pool.acquire() as conn:
        if await sites.get(conn, HQ_SITE.code) is None:
            await sites.insert(conn, HQ_SITE)
        existing = await users.by_username(conn, username)
        if existing is not None:
            if not verify_password(existing.password_hash, password):
                await users.set_password(conn, existing.id, hash_password(password, username))
            return
    await create_user(
        pool,
        None,
        username=username,
        full_name="Firmware bridge",
        password=password,
        roles=[Role.BRIDGE.value],
        site_codes=[HQ_SITE.code],
    )


async def set_password_as_system(pool: Pool, username: str, password: str) -> None:
    """`celltrail user passwd`: an operator at the server's console, audited as `system`."""
    new_hash = hash_password(password, username)
    async with pool.acquire() as conn, conn.transaction():
        user = await users.by_username(conn, username)
        if user is None:
            raise NotFound(f"no user named {username}")
        await users.set_password(conn, user.id, new_hash)
        await tokens.revoke_all_for(conn, user.id)
        await audit.record(
            conn,
            actor_id=None,
            actor_name="system",
            action="password_change",
            entity="user",
            entity_id=username,
            reason="set from the command line",
        )
