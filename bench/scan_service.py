"""A ceiling for the scan API benchmark: the scan's own work without HTTP. One process calls what
`POST /api/v1/scans` calls — authenticate the token, then `record_scan` — from ``connections`` concurrent
tasks on one asyncpg pool for ``seconds``, closed loop. The gap between this and the HTTP figure is the
web framework and server; what this reaches is the database work of a scan on this machine.

Bench only. Run by bench/scan_api.py in a process of its own (spawned, so it shares no interpreter).
"""

from __future__ import annotations

import asyncio
import resource
import time
import uuid
from pathlib import Path
from typing import Any

from bench.http_load import LoadResult, in_own_process, summarise


def _without_keyed_chain() -> None:
    """This process records as Celltrail did before issue 18: plain SHA-256 links and the bare chain
    lock without the recorded states. Bench only, for the figure beside the keyed chain's."""
    from backend.db.repo import cases
    from backend.domain import chain
    from backend.services import chain as chains

    async def plain_lock(
        conn: Any, coi: str, unit_ids: list[str], _units: Any, _shipment: Any, _actions: Any
    ) -> cases.RecordedStates | None:
        locked = await cases.lock_chain(conn, coi)
        if locked is None:
            return None
        # Every scanned bag "recorded" as stored: the bench's scans re-store stored bags.
        stored = cases.RecordedUnit("store", at=None, released=False, quarantined=False)
        return cases.RecordedStates(locked[0], locked[1], "open", dict.fromkeys(unit_ids, stored), None)

    chains.keyed_link = lambda _key, previous, record: chain.event_hash(previous, record)
    cases.lock_chain_with_record = plain_lock


async def _run(
    dsn: str,
    token: str,
    site: str,
    codes: list[str],
    seconds: float,
    connections: int,
    pool_size: int,
    key_file: str,
    keyed: bool,
) -> LoadResult:
    from backend.api import refusals
    from backend.db.pool import create_pool
    from backend.domain.custody import Action
    from backend.services import auth, record_keys, scans
    from backend.settings import load_settings

    record_keys.configure(record_keys.load(load_settings({}, record_key_file=key_file)))
    if not keyed:
        _without_keyed_chain()
    pool = await create_pool(dsn, min_size=pool_size, max_size=pool_size)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = 0
    cpu_before = _cpu_seconds()
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
            outcome = await scans.record_scan(pool, principal, command, 60)
            latencies.append(time.perf_counter() - start)
            status = refusals.answer(outcome).status_code
            statuses[status] = statuses.get(status, 0) + 1

    try:
        await asyncio.gather(*(client() for _ in range(connections)))
    finally:
        await pool.close()
    result = summarise(latencies, statuses, time.perf_counter() - began)
    return result._replace(cpu_s=_cpu_seconds() - cpu_before)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    *,
    key_file: Path,
    keyed: bool = True,
) -> LoadResult:
    """Saturate `record_scan` from a separate process: ``connections`` tasks sharing a pool of
    ``pool_size`` (the server's default pool size). `keyed=False`: as before issue 18 (see
    `_without_keyed_chain`)."""
    arguments = (dsn, token, site, codes, seconds, connections, pool_size, str(key_file), keyed)
    return in_own_process(_process, arguments, seconds)
