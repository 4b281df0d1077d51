"""API keys: the credential of service accounts (the firmware bridge, integrations).

A key is `ctk_` followed by 43 random URL-safe characters (256 bits). It is shown once, when created, and
kept only as its SHA-256 digest: a random key of that length needs no slow hash, unlike a password. A
request with `Authorization: Bearer ctk_...` acts as the key's account (backend/services/auth.py) without
signing in, so the sign-in throttle never touches it. Keys are only for service accounts, whose roles
are all non-personal (today: `bridge`): a key for a person would bypass their password and lockout.
Creation and revocation are audited; a revoked key is refused from the next request on."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

import msgspec

from backend.db.repo import api_keys, audit, sites, users
from backend.db.repo.api_keys import ApiKeyRow
from backend.db.types import Pool
from backend.domain.access import PEOPLE_ROLES, Principal, Role
from backend.domain.errors import Conflict, InvalidInput, NotFound
from backend.services.auth import KEY_PREFIX, token_digest

log = logging.getLogger(__name__)

# The part of a key shown in lists, to tell keys apart: the prefix and six random characters.
HINT_LENGTH = len(KEY_PREFIX) + 6
NAME_MAX = 100


class IssuedKey(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    username: str
    name: str
    hint: str
    created_at: datetime
    key: str  # shown once; never stored, never logged

    def __repr__(self) -> str:
        return f"IssuedKey(id={self.id}, username={self.username!r}, name={self.name!r}, hint={self.hint!r})"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def is_service_account(roles: list[str]) -> bool:
    return bool(roles) and not any(Role(r) in PEOPLE_ROLES for r in roles)


def _actor(actor: Principal | None) -> tuple[int | None, str]:
    return (actor.user_id, actor.username) if actor else (None, "system")


async def create_key(pool: Pool, actor: Principal | None, username: str, name: str) -> IssuedKey:
    account = username.strip().lower()
    label = name.strip()
    if not 1 <= len(label) <= NAME_MAX:
        raise InvalidInput(
            f"give the key a name of 1 to {NAME_MAX} characters (what or where it is used)",
            field_errors={"name": f"1 to {NAME_MAX} characters"},
        )
    key = new_key()
    hint = key[:HINT_LENGTH]
    actor_id, actor_name = _actor(actor)
    async with pool.acquire() as conn, conn.transaction():
        user = await users.by_username(conn, account)
        if user is None:
            raise NotFound(f"no user named {account}")
        if not is_service_account(user.roles):
            raise Conflict(
                f"API keys are for service accounts only (role {', '.join(_service_roles())}); {account} "
                f"has the role {', '.join(user.roles)} and signs in with a password",
                field_errors={"username": "not a service account"},
            )
        if not user.active:
            raise Conflict(f"{account} is deactivated; reactivate the account first")
        key_id = await api_keys.insert(conn, user.id, label, hint, token_digest(key), actor_id)
        row = await api_keys.by_id(conn, key_id)
        assert row is not None
        await audit.record(
            conn,
            actor_id=actor_id,
            actor_name=actor_name,
            action="create",
            entity="api_key",
            entity_id=str(key_id),
            new_value={"account": account, "name": label, "hint": hint},
        )
    log.info("API key created", extra={"key_id": key_id, "account": account, "hint": hint})
    return IssuedKey(id=key_id, username=account, name=label, hint=hint, created_at=row.created_at, key=key)


def _service_roles() -> list[str]:
    return sorted(r.value for r in Role if r not in PEOPLE_ROLES)


async def list_keys(pool: Pool, username: str | None = None) -> list[ApiKeyRow]:
    async with pool.acquire() as conn:
        return await api_keys.list_all(conn, username.strip().lower() if username else None)


async def revoke_key(pool: Pool, actor: Principal | None, key_id: int, reason: str) -> ApiKeyRow:
    """Revoke at once: the next request with the key is refused. Revoking twice changes nothing."""
    actor_id, actor_name = _actor(actor)
    async with pool.acquire() as conn, conn.transaction():
        if await api_keys.by_id(conn, key_id) is None:
            raise NotFound(f"no API key with id {key_id}")
        if await api_keys.revoke(conn, key_id, actor_id):
            await audit.record(
                conn,
                actor_id=actor_id,
                actor_name=actor_name,
                action="revoke",
                entity="api_key",
                entity_id=str(key_id),
                reason=reason,
            )
            log.info("API key revoked", extra={"key_id": key_id})
        row = await api_keys.by_id(conn, key_id)
    assert row is not None
    return row


async def create_service_account(pool: Pool, username: str, full_name: str, site: str) -> bool:
    """A `bridge` account bound to `site`, unless one of that name exists (True when created). Its
    password is random and never shown: the account authenticates with API keys only."""
    from backend.services import accounts

    async with pool.acquire() as conn:
        if await users.by_username(conn, username.strip().lower()) is not None:
            return False
        if site == accounts.HQ_SITE.code and await sites.get(conn, site) is None:
            await sites.insert(conn, accounts.HQ_SITE)
    try:
        await accounts.create_user(
            pool,
            None,
            username=username,
            full_name=full_name,
            password=secrets.token_urlsafe(32),
            roles=[Role.BRIDGE.value],
            site_codes=[site],
        )
    except Conflict:
        return False  # created meanwhile by someone else
    return True


async def provision_key(pool: Pool, username: str, current: str | None, name: str) -> str | None:
    """For `celltrail up`: None when `current` is a working key of `username`, else a new key (which
    the caller must keep: it is not shown again)."""
    if current and current.startswith(KEY_PREFIX):
        async with pool.acquire() as conn:
            state = await api_keys.lookup(conn, token_digest(current))
        if (
            state is not None
            and not state.revoked
            and state.user.active
            and state.user.username == username.strip().lower()
        ):
            return None
    return (await create_key(pool, None, username, name)).key
