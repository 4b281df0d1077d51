"""Site rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class SiteRow(msgspec.Struct, frozen=True):
    code: str
    name: str
    kind: str
    time_zone: str
    gln: str | None


_COLUMNS = "code, name, kind, time_zone, gln"


async def insert(conn: Conn, site: SiteRow) -> bool:
    """False when the code is taken."""
    row = await conn.fetchrow(
        f"INSERT INTO sites ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING "  # noqa: S608
        "RETURNING code",
        site.code,
        site.name,
        site.kind,
        site.time_zone,
        site.gln,
    )
    return row is not None


async def get(conn: Conn, code: str) -> SiteRow | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM sites WHERE code = $1", code)  # noqa: S608
    return SiteRow(**row) if row else None


async def list_all(conn: Conn) -> list[SiteRow]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM sites ORDER BY code")  # noqa: S608
    return [SiteRow(**r) for r in rows]


async def existing(conn: Conn, codes: list[str]) -> set[str]:
    rows = await conn.fetch("SELECT code FROM sites WHERE code = ANY($1::text[])", codes)
    return {r["code"] for r in rows}
