"""Bearer tokens, kept only as SHA-256 digests."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from backend.db.repo import users
from backend.db.repo.users import UserRow

if TYPE_CHECKING:
    from backend.db.types import Conn


async def insert(conn: Conn, token_hash: bytes, user_id: int, expires_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO auth_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        user_id,
        expires_at,
    )


class TokenState(msgspec.Struct, frozen=True):
    expired: bool
    revoked: bool
    user: UserRow


async def lookup(conn: Conn, token_hash: bytes) -> TokenState | None:
    """The token's state and its user in one statement: every authenticated request pays for this."""
    row = await conn.fetchrow(
        users.SELECT  # noqa: S608 - constant fragments only
        + """, t.expires_at <= now() AS token_expired, t.revoked_at IS NOT NULL AS token_revoked
             FROM auth_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1""",
        token_hash,
    )
    if row is None:
        return None
    fields = dict(row)
    expired, revoked = fields.pop("token_expired"), fields.pop("token_revoked")
    return TokenState(expired=expired, revoked=revoked, user=msgspec.convert(fields, UserRow))


async def revoke(conn: Conn, token_hash: bytes) -> None:
    await conn.execute(
        "UPDATE auth_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL", token_hash
    )


async def revoke_all_for(conn: Conn, user_id: int) -> int:
    status = await conn.execute(
        "UPDATE auth_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", user_id
    )
    return int(status.split()[-1])
