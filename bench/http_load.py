"""An HTTP/1.1 load generator for the API benchmarks: raw asyncio sockets on uvloop, keep-alive
connections, in a process of its own so it shares no interpreter with what it measures.

Two modes: a fixed request rate (open loop: each request has a due time, and its latency is counted from
that due time, so a server that falls behind shows the queueing instead of hiding it), or saturation
(closed loop: ``connections`` clients each send the next request as soon as the answer came).

httpx costs about 300 µs of CPU per request, so on two cores an httpx client would measure itself; here a
request is a pre-framed bytes object and the answer is parsed just enough to find its end.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple


class LoadResult(NamedTuple):
    sent: int
    ok: int
    errors: int
    seconds: float
    per_s: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    # CPU seconds the load process itself spent (user + system), where the run measures it
    cpu_s: float = 0.0


class ScanLoad(NamedTuple):
    """What to send: ``POST path`` with a scan body for ``codes[i % len(codes)]``."""

    host: str
    port: int
    path: str
    token: str | None
    site: str
    action: str
    codes: list[str]
    storage_location: str


def _request(load: ScanLoad, i: int) -> bytes:
    code = load.codes[i % len(load.codes)]
    body = (
        f'{{"idempotency_key":"{uuid.uuid4().hex}","action":"{load.action}","site":"{load.site}",'
        f'"codes":["{code}"],"storage_location":"{load.storage_location}"}}'
    ).encode()
    auth = f"Authorization: Bearer {load.token}\r\n" if load.token else ""
    head = (
        f"POST {load.path} HTTP/1.1\r\nHost: {load.host}:{load.port}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _run(load: ScanLoad, rate: float | None, seconds: float, connections: int) -> LoadResult:
    pool = [await asyncio.open_connection(load.host, load.port) for _ in range(connections)]
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for conn in pool:
        idle.put_nowait(conn)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = 0
    began = time.perf_counter()
    ends = began + seconds

    async def one(due: float, request: bytes) -> None:
        conn = await idle.get()
        try:
            status = await _exchange(conn[0], conn[1], request)
        finally:
            idle.put_nowait(conn)
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1

    if rate is None:

        async def client() -> None:
            nonlocal counter
            while time.perf_counter() < ends:
                counter += 1
                await one(time.perf_counter(), _request(load, counter))

        await asyncio.gather(*(client() for _ in range(connections)))
    else:
        tasks: set[asyncio.Task[None]] = set()
        while True:
            due = began + counter / rate
            if due >= ends:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            counter += 1
            task = asyncio.create_task(one(due, _request(load, counter)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    for _, writer in pool:
        writer.close()
    return summarise(latencies, statuses, elapsed)


def summarise(latencies: list[float], statuses: dict[int, int], elapsed: float) -> LoadResult:
    """Rate of 2xx answers and latency percentiles of one load run."""
    latencies = sorted(latencies)
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


def _process(load: ScanLoad, rate: float | None, seconds: float, connections: int, results: Any) -> None:
    import uvloop

    results.put(uvloop.run(_run(load, rate, seconds, connections)))


def in_own_process(target: Callable[..., None], args: tuple[Any, ...], seconds: float) -> LoadResult:
    """Run ``target(*args, results_queue)`` in a spawned process (no shared interpreter with what it
    measures) and return the LoadResult it puts on the queue."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, results))
    process.start()
    try:
        result: LoadResult = results.get(timeout=seconds + 120)
    finally:
        process.join(30)
    return result


def run_load(load: ScanLoad, rate: float | None, seconds: float, connections: int = 32) -> LoadResult:
    """Drive ``load`` from a separate process for ``seconds`` at ``rate`` req/s (None: saturation)."""
    return in_own_process(_process, (load, rate, seconds, connections), seconds)
