"""Temperature profiles: versions, their owner site and the four-eyes decision on each new version.

`sites` arguments restrict to what a person may see: network profiles (no owner) and those owned by one
of the sites; None means no restriction (administrators).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from backend.db.types import Conn


class ProfileRow(msgspec.Struct, frozen=True):
    code: str
    version: int
    name: str
    definition: Any
    created_at: datetime
    owner_site: str | None
    status: str
    proposed_by_id: int | None
    proposed_by: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    signature: Any
    # Of the profile (the code): every version, and the one new shipments take (None: none approved yet).
    versions: list[int]
    approved_version: int | None


_SELECT = """
SELECT p.code, p.version, p.name, p.definition, p.created_at, p.owner_site, p.status,
       p.proposed_by AS proposed_by_id, pu.username AS proposed_by, du.username AS decided_by,
       p.decided_at, p.decision_reason, p.signature,
       ARRAY(SELECT q.version FROM temperature_profiles q WHERE q.code = p.code ORDER BY q.version) AS versions,
       (SELECT max(q.version) FROM temperature_profiles q WHERE q.code = p.code AND q.status = 'approved')
           AS approved_version
FROM temperature_profiles p
LEFT JOIN users pu ON pu.id = p.proposed_by
LEFT JOIN users du ON du.id = p.decided_by
"""
_VISIBLE = "($1::text[] IS NULL OR p.owner_site IS NULL OR p.owner_site = ANY($1))"
# The version a profile stands for: its newest approved one; a profile with none yet, its newest version.
_SHOWN = """p.version = (SELECT coalesce(max(q.version) FILTER (WHERE q.status = 'approved'), max(q.version))
                         FROM temperature_profiles q WHERE q.code = p.code)"""


async def lock_code(conn: Conn, code: str) -> None:
    """Serialises proposals and decisions on one code until the transaction ends: two proposers cannot
    take the same number, and a decision reads the versions as they stay."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('temperature_profiles:' || $1))", code)


async def profiles(conn: Conn, all_versions: bool, sites: list[str] | None) -> list[ProfileRow]:
    rows = await conn.fetch(
        f"{_SELECT} WHERE {_VISIBLE} AND ($2 OR {_SHOWN}) ORDER BY p.code, p.version",
        sites,
        all_versions,
    )
    return [ProfileRow(**r) for r in rows]


async def profile(conn: Conn, code: str, version: int | None, sites: list[str] | None) -> ProfileRow | None:
    """One version, or (version None) the one the profile stands for."""
    row = await conn.fetchrow(
        f"""{_SELECT} WHERE {_VISIBLE} AND p.code = $2
            AND (p.version = $3 OR ($3::int IS NULL AND {_SHOWN}))""",
        sites,
        code,
        version,
    )
    return ProfileRow(**row) if row else None


class Taken(msgspec.Struct, frozen=True):
    owner_site: str | None


async def taken(conn: Conn, code: str) -> Taken | None:
    """Whether `code` exists, and whose it is, whoever asks: None for a code not taken."""
    row = await conn.fetchrow("SELECT owner_site FROM temperature_profiles WHERE code = $1 LIMIT 1", code)
    return Taken(row["owner_site"]) if row else None


async def approved_version(conn: Conn, code: str) -> int | None:
    """The version new shipments take: the newest approved one."""
    value = await conn.fetchval(
        "SELECT max(version) FROM temperature_profiles WHERE code = $1 AND status = 'approved'", code
    )
    return int(value) if value is not None else None


async def insert_version(
    conn: Conn, code: str, name: str, definition: Any, owner_site: str | None, proposed_by: int
) -> int:
    """The next version of `code` (1 for a new code), pending. Call under `lock_code`."""
    version = await conn.fetchval(
        """INSERT INTO temperature_profiles (code, version, name, definition, owner_site, status, proposed_by)
           SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, 'pending', $5
           FROM temperature_profiles WHERE code = $1
           RETURNING version""",
        code,
        name,
        definition,
        owner_site,
        proposed_by,
    )
    return int(version)


async def decide(
    conn: Conn,
    code: str,
    version: int,
    status: str,
    decided_by: int,
    reason: str | None,
    signature: Any,
) -> bool:
    """Record the decision on a pending version; False when it was no longer pending."""
    done = await conn.fetchval(
        """UPDATE temperature_profiles
           SET status = $3, decided_by = $4, decided_at = clock_timestamp(), decision_reason = $5,
               signature = $6
           WHERE code = $1 AND version = $2 AND status = 'pending'
           RETURNING true""",
        code,
        version,
        status,
        decided_by,
        reason,
        signature,
    )
    return bool(done)
