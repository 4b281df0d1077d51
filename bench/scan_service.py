"""A ceiling for the scan API benchmark: the scan's own work without HTTP. One process calls what
`POST /api/v1/scans` calls — authenticate the token, then `record_scan` — from ``connections`` concurrent
tasks on one asyncpg pool for ``seconds``, closed loop. The gap between this and the HTTP figure is the
web framework and server; what this reaches is the database work of a scan on this machine.

Bench only. Run by bench/scan_api.py in a process of its own (spawned, so it shares no interpreter).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
import uuid
from typing import Any

from bench.http_load import LoadResult


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
    elapsed = time.perf_counter() - began
    latencies.sort()
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)

    def pct(q: float) -> float:
        return latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000 if latencies else 0.0

    return LoadResult(
        sent=len(latencies),
        ok=ok,
        errors=len(latencies) - ok,
        seconds=elapsed,
        per_s=ok / elapsed,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        statuses=statuses,
    )


def _process(args: tuple[Any, ...], results: Any) -> None:
    import uvloop

    results.put(uvloop.run(_run(*args)))


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
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    process = ctx.Process(
        target=_process, args=((dsn, token, site, codes, seconds, connections, pool_size), results)
    )
    process.start()
    try:
        result: LoadResult = results.get(timeout=seconds + 120)
    finally:
        process.join(30)
    return result
