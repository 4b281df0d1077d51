"""Encrypted patient identities (migration 0046) and the sites' wristband policies. This module moves
ciphertext only: encryption, decryption and who may ask are backend/services/patient_identity.py's."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class SealedIdentity(msgspec.Struct, frozen=True):
    coi: str
    key_id: str
    nonce: bytes
    ciphertext: bytes
    updated_at: datetime
    updated_by: int | None


_COLUMNS = "coi, key_id, nonce, ciphertext, updated_at, updated_by"


async def get(conn: Conn, coi: str, lock: bool = False) -> SealedIdentity | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM patient_identities WHERE coi = $1{' FOR UPDATE' if lock else ''}",  # noqa: S608
        coi,
    )
    return SealedIdentity(**row) if row else None


async def put(
    conn: Conn, coi: str, key_id: str, nonce: bytes, ciphertext: bytes, user_id: int | None
) -> bool:
    """Insert or replace the case's identity; True when the case had none before."""
    created: bool = await conn.fetchval(
        """INSERT INTO patient_identities (coi, key_id, nonce, ciphertext, updated_by)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (coi) DO UPDATE
              SET key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
                  updated_at = now(), updated_by = EXCLUDED.updated_by
           RETURNING xmax = 0""",
        coi,
        key_id,
        nonce,
        ciphertext,
        user_id,
    )
    return created


async def reseal(conn: Conn, coi: str, old_key_id: str, key_id: str, nonce: bytes, ciphertext: bytes) -> bool:
    """Replace a row's ciphertext under another key, only if it is still under `old_key_id` (a concurrent
    update wins); who last changed the identity stays as it was."""
    status: str = await conn.execute(
        """UPDATE patient_identities SET key_id = $3, nonce = $4, ciphertext = $5
            WHERE coi = $1 AND key_id = $2""",
        coi,
        old_key_id,
        key_id,
        nonce,
        ciphertext,
    )
    return status.endswith(" 1")


async def count_not_under(conn: Conn, key_id: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM patient_identities WHERE key_id <> $1", key_id))


async def batch_not_under(conn: Conn, key_id: str, after: str, limit: int) -> list[SealedIdentity]:
    """The next rows (by COI, after `after`) sealed under another key than `key_id`."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM patient_identities WHERE key_id <> $1 AND coi > $2 "  # noqa: S608
        "ORDER BY coi LIMIT $3",
        key_id,
        after,
        limit,
    )
    return [SealedIdentity(**r) for r in rows]


async def wristband_fields(conn: Conn, site: str) -> list[str] | None:
    """The site's wristband policy; None when there is no such site."""
    row = await conn.fetchrow("SELECT wristband_fields FROM sites WHERE code = $1", site)
    return list(row["wristband_fields"]) if row else None


async def set_wristband_fields(conn: Conn, site: str, fields: list[str]) -> list[str] | None:
    """The policy it replaced; None when there is no such site."""
    row = await conn.fetchrow(
        """UPDATE sites s SET wristband_fields = $2::text[]
             FROM (SELECT code, wristband_fields FROM sites WHERE code = $1 FOR UPDATE) old
            WHERE s.code = old.code
        RETURNING old.wristband_fields""",
        site,
        fields,
    )
    return list(row["wristband_fields"]) if row else None
