"""Whether the database answers, for /healthz: a probe that never raises, so that a load balancer gets
an answer (503) rather than an error page when the database is away."""

from __future__ import annotations

import asyncio
from typing import Final

import asyncpg
import msgspec

from backend.db.types import Pool

# What a database that is away, slow or restarting looks like to a caller.
FAULTS: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
PROBE_SECONDS: Final = 2.0


class Probe(msgspec.Struct, frozen=True):
    ok: bool
    detail: str


async def database(pool: Pool) -> Probe:
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), PROBE_SECONDS)
    except FAULTS as exc:
        return Probe(ok=False, detail=f"not answering ({type(exc).__name__})")
    return Probe(ok=True, detail="answering")
