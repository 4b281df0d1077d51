"""Storage housekeeping: the readings table is partitioned by month (migration 0041) and the coming
months' partitions are made ahead by the backend, never by hand. One step of the housekeeping tick
(backend/services/monitoring.py); idempotent, and safe with several replicas ticking at once (the
database function serialises creators)."""

from __future__ import annotations

import logging

from backend.db.types import Pool

log = logging.getLogger(__name__)

# The current month and this many after it always have their partition: a reading is routed to its own
# month from the first second of that month, even after housekeeping stopped for a while.
READINGS_MONTHS_AHEAD = 2


async def ensure_readings_partitions(pool: Pool, months_ahead: int = READINGS_MONTHS_AHEAD) -> int:
    """Create the missing month partitions from the current month on; return how many were created."""
    async with pool.acquire() as conn:
        created = int(await conn.fetchval("SELECT ensure_readings_partitions($1)", months_ahead))
    if created:
        log.info("readings partitions created", extra={"created": created, "months_ahead": months_ahead})
    return created
