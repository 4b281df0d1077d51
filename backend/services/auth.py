"""Sign-in, bearer tokens and the principal behind a request.

Sign-in is throttled through PostgreSQL (shared by every worker): after `max_failures` failures for one
username within the window, that username is locked for the window; one client address is locked after
`max_client_failures` failures across all usernames. A locked sign-in is refused before the password is
even checked, so a guesser learns nothing, and the attempt does not prolong the lockout."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
from datetime import UTC, datetime, timedelta

import msgspec

from backend.db.repo import api_keys, audit, login_attempts, tokens, users
from backend.db.repo.login_attempts import Scope
from backend.db.repo.users import UserRow
from backend.db.types import Conn, Pool
from backend.domain.access import OrganisationKind, Principal, Role
from backend.domain.errors import AuthenticationFailed, NotFound, TooManyAttempts
from backend.services.passwords import verify_password
from backend.settings import Settings

log = logging.getLogger(__name__)
# API keys of service accounts start with this (backend/services/api_keys.py); session tokens never do.
KEY_PREFIX = "ctk_"
# Columns in login_failures / login_lockouts are bounded; an over-long value is cut, not refused.
_SUBJECT_MAX = 64


class LoginLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_failures: int = 5
    lockout_minutes: int = 15
    max_client_failures: int = 20

    @classmethod
    def of(cls, settings: Settings) -> LoginLimits:
        return cls(
            max_failures=settings.login_max_failures,
            lockout_minutes=settings.login_lockout_minutes,
            max_client_failures=settings.login_max_failures_per_client,
        )


DEFAULT_LIMITS = LoginLimits()


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def principal_of(user: UserRow) -> Principal:
    kind = OrganisationKind(user.organisation_kind) if user.organisation_kind else None
    return Principal(
        user_id=user.id,
        username=user.username,
        full_name=user.full_name,
        roles=frozenset(Role(r) for r in user.roles),
        # A client's users act nowhere and see by relation only: a site binding (left over, or made by
        # mistake) must open nothing to them, neither a record nor a site's routes.
        sites=frozenset() if kind is OrganisationKind.CLIENT else frozenset(user.sites),
        organisation=user.organisation,
        organisation_kind=kind,
    )


class IssuedToken:
    def __init__(self, token: str, expires_at: datetime, principal: Principal) -> None:
        self.token = token
        self.expires_at = expires_at
        self.principal = principal


async def login(
    pool: Pool,
    username: str,
    password: str,
    ttl: timedelta,
    *,
    client: str | None = None,
    limits: LoginLimits = DEFAULT_LIMITS,
) -> IssuedToken:
    name = username.strip().lower()[:_SUBJECT_MAX]
    # Without a client address (a caller that has none) only the per-username limit applies: lumping
    # such callers under one shared address would let a few failures lock everybody out.
    address = client[:_SUBJECT_MAX] if client else None
    async with pool.acquire() as conn:
        locked_until = await login_attempts.active_lockout(conn, name, address)
        if locked_until is not None:
            raise _locked(locked_until)
        user = await users.by_username(conn, name)
        # Argon2 takes tens of milliseconds of CPU: off the event loop, so other requests go on.
        ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
        if user is None or not ok:
            await _record_failure(conn, name, address, limits)
            # One message for both cases so a caller cannot probe which usernames exist.
            raise AuthenticationFailed("the username or password is wrong")
        if not user.active:
            raise AuthenticationFailed("this account is deactivated; ask an administrator")
        # The right password resets the username's count; the client address's count stays, so that
        # one valid account cannot be used to reset a password-spraying client between guesses.
        await login_attempts.forget_failures(conn, "username", name)
        token = _session_token()
        expires_at = datetime.now(UTC) + ttl
        await tokens.insert(conn, token_digest(token), user.id, expires_at)
        return IssuedToken(token, expires_at, principal_of(user))


def _session_token() -> str:
    # A session token must not look like an API key: the prefix decides which table answers for it.
    while (token := secrets.token_urlsafe(32)).startswith(KEY_PREFIX):
        pass
    return token


def _locked(locked_until: datetime) -> TooManyAttempts:
    seconds = max(1, math.ceil((locked_until - datetime.now(UTC)).total_seconds()))
    return TooManyAttempts(
        f"too many failed sign-ins; try again in {math.ceil(seconds / 60)} minute(s) "
        "or ask an administrator to unlock the account",
        retry_after_seconds=seconds,
    )


async def _record_failure(conn: Conn, name: str, address: str | None, limits: LoginLimits) -> None:
    async with conn.transaction():
        # Always username first, then client: one lock order, so concurrent failures cannot deadlock.
        await login_attempts.serialise(conn, "username", name)
        checks: list[tuple[Scope, str, int]] = [("username", name, limits.max_failures)]
        if address is not None:
            await login_attempts.serialise(conn, "client", address)
            checks.append(("client", address, limits.max_client_failures))
        await login_attempts.record_failure(conn, name, address or "")
        for scope, subject, threshold in checks:
            await _maybe_lock(conn, scope, subject, threshold, limits.lockout_minutes, address)


async def _maybe_lock(
    conn: Conn, scope: Scope, subject: str, threshold: int, minutes: int, address: str | None
) -> None:
    failures = await login_attempts.recent_failures(conn, scope, subject, minutes)
    if failures < threshold or await login_attempts.is_locked(conn, scope, subject):
        return
    locked_until = await login_attempts.lock(conn, scope, subject, minutes)
    log.warning("sign-in locked", extra={"scope": scope, "subject": subject, "failures": failures})
    await audit.record(
        conn,
        actor_id=None,
        actor_name="system",
        action="lockout",
        entity="user" if scope == "username" else "client",
        entity_id=subject,
        new_value={"failures": failures, "locked_until": locked_until.isoformat(), "client": address},
        reason=f"{failures} failed sign-ins within {minutes} minutes",
    )


async def unlock(pool: Pool, actor: Principal, username: str, reason: str) -> int:
    """An administrator lifts a username's lockout and clears its failures; returns the number of
    lockouts lifted (0 when none was in force: the failures are cleared all the same)."""
    name = username.strip().lower()
    async with pool.acquire() as conn, conn.transaction():
        if await users.by_username(conn, name) is None:
            raise NotFound(f"no user named {name}")
        await login_attempts.serialise(conn, "username", name)
        lifted = await login_attempts.unlock(conn, "username", name, actor.user_id)
        await login_attempts.forget_failures(conn, "username", name)
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="unlock",
            entity="user",
            entity_id=name,
            new_value={"lockouts_lifted": lifted},
            reason=reason,
        )
    return lifted


async def record_signature_failure(
    conn: Conn, username: str, limits: LoginLimits, *, counted: bool, details: dict[str, object]
) -> None:
    """A refused electronic signature (backend/services/signing.py): counted as a failed sign-in of that
    username (`counted`; an attempt refused because of a lockout is not, like a locked sign-in) and kept
    in the audit trail with `details`, which never hold the password. One transaction on `conn`."""
    name = username.strip().lower()[:_SUBJECT_MAX]
    async with conn.transaction():
        if counted:
            await _record_failure(conn, name, None, limits)
        await audit.record(
            conn,
            actor_id=None,
            actor_name="system",
            action="signature_refused",
            entity="user",
            entity_id=name,
            new_value=details,
            reason="electronic signature refused",
        )


async def signature_lockout(conn: Conn, username: str) -> TooManyAttempts | None:
    """The lockout in force for this username, as the error a sign-in would get, or None."""
    locked_until = await login_attempts.active_lockout(conn, username.strip().lower()[:_SUBJECT_MAX], None)
    return _locked(locked_until) if locked_until is not None else None


async def authenticate(pool: Pool, token: str) -> Principal:
    if token.startswith(KEY_PREFIX):
        return await _authenticate_key(pool, token)
    async with pool.acquire() as conn:
        state = await tokens.lookup(conn, token_digest(token))
    if state is None:
        raise AuthenticationFailed("the token is not valid; sign in again")
    if state.revoked:
        raise AuthenticationFailed("the token was revoked (signed out or password changed); sign in again")
    if state.expired:
        raise AuthenticationFailed("the token has expired; sign in again")
    if not state.user.active:
        raise AuthenticationFailed("this account is deactivated; ask an administrator")
    return principal_of(state.user)


async def _authenticate_key(pool: Pool, key: str) -> Principal:
    """A service account's API key: no sign-in, so no sign-in throttle; a revoked key fails at once."""
    async with pool.acquire() as conn:
        state = await api_keys.lookup(conn, token_digest(key))
    if state is None:
        raise AuthenticationFailed("the API key is not valid; ask an administrator for a new one")
    if state.revoked:
        raise AuthenticationFailed("the API key was revoked; ask an administrator for a new one")
    if not state.user.active:
        raise AuthenticationFailed("this account is deactivated; ask an administrator")
    return principal_of(state.user)


async def logout(pool: Pool, token: str) -> None:
    async with pool.acquire() as conn:
        await tokens.revoke(conn, token_digest(token))
