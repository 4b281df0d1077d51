"""Organisations and what ties records to them: sites and users they own, a leg's courier company, a
case's client (migration 0055)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class OrganisationRow(msgspec.Struct, frozen=True):
    code: str
    name: str
    kind: str
    sites: list[str]


_SELECT = """
SELECT o.code, o.name, o.kind,
       ARRAY(SELECT s.code FROM sites s WHERE s.organisation = o.code ORDER BY s.code) AS sites
FROM organisations o
"""


async def insert(conn: Conn, code: str, name: str, kind: str) -> bool:
    """False when the code is taken."""
    row = await conn.fetchrow(
        "INSERT INTO organisations (code, name, kind) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING "
        "RETURNING code",
        code,
        name,
        kind,
    )
    return row is not None


async def get(conn: Conn, code: str) -> OrganisationRow | None:
    row = await conn.fetchrow(_SELECT + " WHERE o.code = $1", code)
    return OrganisationRow(**row) if row else None


async def list_all(conn: Conn) -> list[OrganisationRow]:
    return [OrganisationRow(**r) for r in await conn.fetch(_SELECT + " ORDER BY o.code")]


async def site_organisation(conn: Conn, site: str) -> tuple[bool, str | None]:
    """(whether the site exists, its organisation), the row locked for the caller's transaction."""
    row = await conn.fetchrow("SELECT organisation FROM sites WHERE code = $1 FOR UPDATE", site)
    return (row is not None, row["organisation"] if row else None)


async def set_site_organisation(conn: Conn, site: str, organisation: str | None) -> None:
    await conn.execute("UPDATE sites SET organisation = $2 WHERE code = $1", site, organisation)


async def case_client(conn: Conn, coi: str) -> str | None:
    return await conn.fetchval("SELECT client_organisation FROM cases WHERE coi = $1", coi)  # type: ignore[no-any-return]


async def lock_case_client(conn: Conn, coi: str) -> str | None:
    """The case's client, its row locked so that two namings cannot both find none."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT client_organisation FROM cases WHERE coi = $1 FOR UPDATE", coi
    )


async def set_case_client(conn: Conn, coi: str, organisation: str) -> None:
    await conn.execute("UPDATE cases SET client_organisation = $2 WHERE coi = $1", coi, organisation)


async def client_cases(conn: Conn, organisation: str, limit: int) -> list[str]:
    """COIs of the cases made for a client, newest first."""
    rows = await conn.fetch(
        "SELECT coi FROM cases WHERE client_organisation = $1 ORDER BY created_at DESC LIMIT $2",
        organisation,
        limit,
    )
    return [r["coi"] for r in rows]


async def manufacturing_sites(conn: Conn, organisation: str, bound_to: list[str]) -> list[str]:
    """The manufacturer's manufacturing sites, for a user bound to at least one of its sites (none
    otherwise): a user belongs to the organisation where they work, not only on paper."""
    rows = await conn.fetch(
        """SELECT code FROM sites
           WHERE organisation = $1 AND kind = 'manufacturing'
             AND EXISTS (SELECT 1 FROM sites own WHERE own.organisation = $1 AND own.code = ANY($2::text[]))
           ORDER BY code""",
        organisation,
        bound_to,
    )
    return [r["code"] for r in rows]
