"""A ceiling for the scan API benchmark: the scan's own work without HTTP. One process calls what
`POST /api/v1/scans` calls — authenticate the token, then `record_scan` — from ``connections`` concurrent
tasks on one asyncpg pool for ``seconds``, closed loop. The gap between this and the HTTP figure is the
web framework and server; what this reaches is the database work of a scan on this machine.

Bench only. Run by bench/scan_api.py in a process of its own (spawned, so it shares no interpreter).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench.http_load import LoadResult, in_own_process, summarise


async def _run(
    dsn: str, token: str, site: str, codes: list[str], seconds: float, connections: int, pool_size: int
) -> LoadResult:
    from backend.db.pool import create_pool
    from backend.domain.custody import Action
    from backend.services import auth, scans

    pool = await create_pool(dsn, min_size=pool_size, max_size=pool_size)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = 0
    began = time.perf_counter()
    ends = began + seconds

    async def client() -> None:
        nonlocal counter
        while time.perf_counter() < ends:
            counter += 1
            command = scans.ScanCommand(
                idempotency_key=uuid.uuid4().hex,
                action=Action.STORE,
                site=site,
                codes=[codes[counter % len(codes)]],
                storage_location="LN2-2",
            )
            start = time.perf_counter()
            principal = await auth.authenticate(pool, token)
            answer = await scans.record_scan(pool, principal, command, 60)
            latencies.append(time.perf_counter() - start)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1

    try:
        await asyncio.gather(*(client() for _ in range(connections)))
    finally:
        await pool.close()
    return summarise(latencies, statuses, time.perf_counter() - began)


def _process(*args: Any) -> None:
    import uvloop

    *arguments, results = args
    results.put(uvloop.run(_run(*arguments)))


def run_direct(
    dsn: str,
    token: str,
    site: str,
    codes: list[str],
    seconds: float,
    connections: int = 32,
    pool_size: int = 10,
) -> LoadResult:
    """Saturate `record_scan` from a separate process: ``connections`` tasks sharing a pool of
    ``pool_size`` (the server's default pool size)."""
    return in_own_process(_process, (dsn, token, site, codes, seconds, connections, pool_size), seconds)
