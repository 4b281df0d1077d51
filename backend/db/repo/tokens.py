"""Bearer tokens, kept only as SHA-256 digests."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.db.types import Conn


async def insert(conn: Conn, token_hash: bytes, user_id: int, expires_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO auth_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        user_id,
        expires_at,
    )


class TokenState:
    def __init__(self, user_id: int, expired: bool, revoked: bool, active_user: bool) -> None:
        self.user_id = user_id
        self.expired = expired
        self.revoked = revoked
        self.active_user = active_user


async def lookup(conn: Conn, token_hash: bytes) -> TokenState | None:
    row = await conn.fetchrow(
        """SELECT t.user_id, t.expires_at <= now() AS expired, t.revoked_at IS NOT NULL AS revoked,
                  u.active
           FROM auth_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_hash = $1""",
        token_hash,
    )
    if row is None:
        return None
    return TokenState(row["user_id"], row["expired"], row["revoked"], row["active"])


async def revoke(conn: Conn, token_hash: bytes) -> None:
    await conn.execute(
        "UPDATE auth_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL", token_hash
    )


async def revoke_all_for(conn: Conn, user_id: int) -> int:
    status = await conn.execute(
        "UPDATE auth_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", user_id
    )
    return int(status.split()[-1])
