"""The product catalogue's limits (planning products, migration 0048): a product bag's thaw window,
storage range and shelf life."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from backend.db.types import Conn


class ProductLimits(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    # Minutes from the thaw the record holds to the latest infusion.
    thaw_to_infusion_min: int
    # The storage range, whole degrees Celsius.
    storage_min_c: int
    storage_max_c: int
    # Days from manufacture (cryopreservation) to expiry.
    shelf_life_days: int


_LIMITS = """SELECT code, name, thaw_to_infusion_min, storage_min_c, storage_max_c, shelf_life_days
             FROM planning_products"""


async def limits(conn: Conn, code: str, lock: bool = False) -> ProductLimits | None:
    row = await conn.fetchrow(_LIMITS + " WHERE code = $1" + (" FOR UPDATE" if lock else ""), code)
    return ProductLimits(**row) if row else None


async def all_limits(conn: Conn) -> dict[str, ProductLimits]:
    return {r["code"]: ProductLimits(**r) for r in await conn.fetch(_LIMITS + " ORDER BY code")}


async def set_limits(
    conn: Conn,
    code: str,
    *,
    thaw_to_infusion_min: int,
    storage_min_c: int,
    storage_max_c: int,
    shelf_life_days: int,
) -> ProductLimits | None:
    row = await conn.fetchrow(
        """UPDATE planning_products SET thaw_to_infusion_min = $2, storage_min_c = $3, storage_max_c = $4,
                  shelf_life_days = $5
           WHERE code = $1
           RETURNING code, name, thaw_to_infusion_min, storage_min_c, storage_max_c, shelf_life_days""",
        code,
        thaw_to_infusion_min,
        storage_min_c,
        storage_max_c,
        shelf_life_days,
    )
    return ProductLimits(**row) if row else None


async def manufacturing_sites(conn: Conn, code: str) -> list[str]:
    """Sites that make the product: those with manufacturing capacity declared for it."""
    rows = await conn.fetch("SELECT site FROM manufacturing_capacity WHERE product = $1 ORDER BY site", code)
    return [str(r["site"]) for r in rows]


async def ordered_product(conn: Conn, coi: str) -> str | None:
    """The product of the case's live treatment order (requested or accepted), if it has one."""
    code: str | None = await conn.fetchval(
        "SELECT product FROM treatment_orders WHERE coi = $1 AND status IN ('requested', 'accepted')", coi
    )
    return code
