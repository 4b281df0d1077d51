"""The pharmacy's stock: the bags at the reader's sites between receipt and infusion — received, stored
(and where), dispensed, thawed (and since when, for the thaw timer). Read-only: the page changes stock
with the ordinary custody scans (store, dispense, thaw)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from backend.db.types import Pool
from backend.domain.access import Principal
from backend.services.visibility import site_filter

IN_STOCK: Final = ("received", "stored", "dispensed", "thawed")

_STOCK = """
SELECT u.id, u.coi, u.kind, u.product, u.status, u.site, u.storage_location, u.thawed_at, u.expires_at,
       u.quarantined, u.released
FROM units u
WHERE u.status = ANY($1::text[]) AND u.site IS NOT NULL AND ($2::text[] IS NULL OR u.site = ANY($2::text[]))
ORDER BY u.site, array_position($1::text[], u.status), u.id
LIMIT 500
"""


class StockLine(msgspec.Struct, frozen=True):
    id: str
    coi: str
    kind: str
    product: str
    status: str
    site: str
    storage_location: str | None
    thawed_at: datetime | None
    expires_at: datetime | None
    quarantined: bool
    released: bool


async def stock(pool: Pool, principal: Principal) -> list[StockLine]:
    """Units at the reader's own sites (an administrator's: every site)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(_STOCK, list(IN_STOCK), site_filter(principal))
    return [StockLine(**dict(r)) for r in rows]
