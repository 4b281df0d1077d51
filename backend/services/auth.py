"""Sign-in, bearer tokens and the principal behind a request."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from backend.db.repo import tokens, users
from backend.db.repo.users import UserRow
from backend.db.types import Pool
from backend.domain.access import Principal, Role
from backend.domain.errors import AuthenticationFailed
from backend.services.passwords import verify_password


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def principal_of(user: UserRow) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        full_name=user.full_name,
        roles=frozenset(Role(r) for r in user.roles),
        sites=frozenset(user.sites),
    )


class IssuedToken:
    def __init__(self, token: str, expires_at: datetime, principal: Principal) -> None:
        self.token = token
        self.expires_at = expires_at
        self.principal = principal


async def login(pool: Pool, username: str, password: str, ttl: timedelta) -> IssuedToken:
    async with pool.acquire() as conn:
        user = await users.by_username(conn, username.strip().lower())
        ok = verify_password(user.password_hash if user else None, password)
        if user is None or not ok:
            # One message for both cases so a caller cannot probe which usernames exist.
            raise AuthenticationFailed("the username or password is wrong")
        if not user.active:
            raise AuthenticationFailed("this account is deactivated; ask an administrator")
        token = secrets.token_urlsafe(32)
        expires_at = datetime.now(UTC) + ttl
        await tokens.insert(conn, token_digest(token), user.id, expires_at)
        return IssuedToken(token, expires_at, principal_of(user))


async def authenticate(pool: Pool, token: str) -> Principal:
    async with pool.acquire() as conn:
        state = await tokens.lookup(conn, token_digest(token))
        if state is None:
            raise AuthenticationFailed("the token is not valid; sign in again")
        if state.revoked:
            raise AuthenticationFailed(
                "the token was revoked (signed out or password changed); sign in again"
            )
        if state.expired:
            raise AuthenticationFailed("the token has expired; sign in again")
        if not state.active_user:
            raise AuthenticationFailed("this account is deactivated; ask an administrator")
        user = await users.by_id(conn, state.user_id)
    assert user is not None
    return principal_of(user)


async def logout(pool: Pool, token: str) -> None:
    async with pool.acquire() as conn:
        await tokens.revoke(conn, token_digest(token))
