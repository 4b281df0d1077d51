"""What could not become readings, kept for administrators to review (the ingest path writes them:
backend/services/ingest.py)."""

from __future__ import annotations

from backend.db.repo import dead_letters
from backend.db.repo.dead_letters import StoredDeadLetter
from backend.db.types import Pool


async def recent(pool: Pool, logger_id: str | None, limit: int) -> list[StoredDeadLetter]:
    """The newest dead letters first, of one logger or of all."""
    async with pool.acquire() as conn:
        return await dead_letters.recent(conn, logger_id, limit)
