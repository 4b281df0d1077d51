"""What the live stream reads: the outbox, filtered by the sites the caller may see. The outbox id is the
stream's event id, so a client resumes exactly where it stopped."""

from __future__ import annotations

from backend.db.repo import outbox
from backend.db.repo.outbox import OutboxRow
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.services.visibility import site_filter


async def latest_id(pool: Pool) -> int:
    """The id of the newest notice: a stream without a resume point starts after it."""
    async with pool.acquire() as conn:
        return await outbox.latest_id(conn)


async def notices_after(pool: Pool, principal: Principal, last_id: int) -> list[OutboxRow]:
    """Notices after `last_id` that concern the caller's sites, oldest first (a bounded page)."""
    async with pool.acquire() as conn:
        return await outbox.after(conn, last_id, site_filter(principal), courier=principal.courier_company)
