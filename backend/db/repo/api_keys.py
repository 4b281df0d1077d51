"""API keys of service accounts, kept only as SHA-256 digests (see migration 0010)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from backend.db.repo import users
from backend.db.repo.users import UserRow

if TYPE_CHECKING:
    from backend.db.types import Conn


class ApiKeyRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    username: str
    name: str
    hint: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


_SELECT = """
SELECT k.id, u.username, k.name, k.hint, k.created_at, c.username AS created_by, k.last_used_at,
       k.revoked_at, r.username AS revoked_by
FROM api_keys k
JOIN users u ON u.id = k.user_id
LEFT JOIN users c ON c.id = k.created_by
LEFT JOIN users r ON r.id = k.revoked_by
"""


async def insert(
    conn: Conn, user_id: int, name: str, hint: str, key_hash: bytes, created_by: int | None
) -> int:
    key_id: int = await conn.fetchval(
        """INSERT INTO api_keys (user_id, name, hint, key_hash, created_by)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""",
        user_id,
        name,
        hint,
        key_hash,
        created_by,
    )
    return key_id


async def by_id(conn: Conn, key_id: int) -> ApiKeyRow | None:
    row = await conn.fetchrow(_SELECT + " WHERE k.id = $1", key_id)
    return msgspec.convert(dict(row), ApiKeyRow) if row else None


async def list_all(conn: Conn, username: str | None = None) -> list[ApiKeyRow]:
    rows = await conn.fetch(
        _SELECT + " WHERE ($1::text IS NULL OR u.username = $1) ORDER BY k.id",
        username,
    )
    return [msgspec.convert(dict(r), ApiKeyRow) for r in rows]


async def revoke(conn: Conn, key_id: int, by_user_id: int | None) -> bool:
    """True when this call revoked the key; False when it was revoked already."""
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = now(), revoked_by = $2 WHERE id = $1 AND revoked_at IS NULL",
        key_id,
        by_user_id,
    )
    return status.split()[-1] != "0"


_TOUCH = """
WITH touched AS (
    UPDATE api_keys SET last_used_at = now()
    WHERE key_hash = $1 AND revoked_at IS NULL
      AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
    RETURNING id
)
"""
_KEY = """, k.id AS key_id, k.revoked_at IS NOT NULL AS key_revoked
FROM api_keys k JOIN users u ON u.id = k.user_id
WHERE k.key_hash = $1
"""
_LOOKUP = _TOUCH + users.SELECT + _KEY


class KeyState(msgspec.Struct, frozen=True):
    key_id: int
    revoked: bool
    user: UserRow


async def lookup(conn: Conn, key_hash: bytes) -> KeyState | None:
    """The key's state and its account in one statement (every request with a key pays for it). The
    last use is written at most once a minute, in the same statement, so a busy key costs no extra write
    per request."""
    row = await conn.fetchrow(_LOOKUP, key_hash)
    if row is None:
        return None
    fields = dict(row)
    key_id, revoked = fields.pop("key_id"), fields.pop("key_revoked")
    return KeyState(key_id=key_id, revoked=revoked, user=msgspec.convert(fields, UserRow))
