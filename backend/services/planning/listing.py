"""Lists of the planning records a caller may see (the commands are orders, bookings and capacity)."""

from __future__ import annotations

from backend.db.repo import planning as repo
from backend.db.repo.planning import OrderRow
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.services.visibility import site_filter


async def orders_for(pool: Pool, principal: Principal, limit: int) -> list[OrderRow]:
    """Orders of the caller's sites, placed by them, collected or manufactured there (all for a caller
    bound to every site)."""
    async with pool.acquire() as conn:
        return await repo.orders_for_sites(conn, site_filter(principal), limit)
