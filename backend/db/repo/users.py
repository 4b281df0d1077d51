"""User rows with their roles and sites."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class UserRow(msgspec.Struct, frozen=True):
    id: int
    username: str
    full_name: str
    password_hash: str
    active: bool
    roles: list[str]
    sites: list[str]
    password_changed_at: datetime
    organisation: str | None = None
    organisation_kind: str | None = None


# The columns of a UserRow from `users u`; callers add their own FROM (token look-up joins it).
SELECT = """
SELECT u.id, u.username, u.full_name, u.password_hash, u.active, u.password_changed_at,
       COALESCE((SELECT array_agg(role ORDER BY role) FROM user_roles r WHERE r.user_id = u.id),
                '{}') AS roles,
       COALESCE((SELECT array_agg(site_code ORDER BY site_code) FROM user_sites s WHERE s.user_id = u.id),
                '{}') AS sites,
       u.organisation, (SELECT kind FROM organisations o WHERE o.code = u.organisation) AS organisation_kind
"""
_SELECT = SELECT + " FROM users u\n"  # noqa: S608 - constant fragments only


def _row(record: object) -> UserRow:
    return msgspec.convert(dict(record), UserRow)  # type: ignore[call-overload]


async def by_username(conn: Conn, username: str) -> UserRow | None:
    row = await conn.fetchrow(_SELECT + " WHERE u.username = $1", username)
    return _row(row) if row else None


async def by_id(conn: Conn, user_id: int) -> UserRow | None:
    row = await conn.fetchrow(_SELECT + " WHERE u.id = $1", user_id)
    return _row(row) if row else None


async def list_all(conn: Conn, site: str | None = None) -> list[UserRow]:
    if site is None:
        rows = await conn.fetch(_SELECT + " ORDER BY u.username")
    else:
        rows = await conn.fetch(
            _SELECT  # noqa: S608 - constant fragments only
            + " WHERE EXISTS (SELECT 1 FROM user_sites s WHERE s.user_id = u.id AND s.site_code = $1)"
            " ORDER BY u.username",
            site,
        )
    return [_row(r) for r in rows]


async def insert(conn: Conn, username: str, full_name: str, password_hash: str) -> int | None:
    """The new id, or None when the username is taken."""
    value = await conn.fetchval(
        "INSERT INTO users (username, full_name, password_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (username) DO NOTHING RETURNING id",
        username,
        full_name,
        password_hash,
    )
    return int(value) if value is not None else None


async def set_roles(conn: Conn, user_id: int, roles: list[str]) -> None:
    await conn.execute("DELETE FROM user_roles WHERE user_id = $1", user_id)
    await conn.execute("INSERT INTO user_roles (user_id, role) SELECT $1, unnest($2::text[])", user_id, roles)


async def set_organisation(conn: Conn, user_id: int, organisation: str | None) -> None:
    await conn.execute("UPDATE users SET organisation = $2 WHERE id = $1", user_id, organisation)


async def set_sites(conn: Conn, user_id: int, sites: list[str]) -> None:
    await conn.execute("DELETE FROM user_sites WHERE user_id = $1", user_id)
    await conn.execute(
        "INSERT INTO user_sites (user_id, site_code) SELECT $1, unnest($2::text[])", user_id, sites
    )


async def update_profile(conn: Conn, user_id: int, full_name: str, active: bool) -> None:
    await conn.execute(
        "UPDATE users SET full_name = $2, active = $3 WHERE id = $1", user_id, full_name, active
    )


async def set_password(conn: Conn, user_id: int, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1",
        user_id,
        password_hash,
    )


async def count(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM users"))
