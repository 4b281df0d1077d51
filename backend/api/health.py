"""Liveness for load balancers and people: 200 when the database answers, with the broker's state."""

from __future__ import annotations

import asyncio
from importlib import metadata
from typing import Literal

import asyncpg
from litestar import Response, get
from litestar.di import NamedDependency

from backend.api.schemas import ComponentHealth, Health
from backend.db.types import Pool
from backend.domain.access import PUBLIC
from backend.services.broker_probe import BrokerMonitor


def _version() -> str:
    try:
        return metadata.version("celltrail")
    except metadata.PackageNotFoundError:
        return "unknown"


@get("/healthz", opt=PUBLIC, operation_id="health", tags=["health"], security=[])
async def healthz(pool: NamedDependency[Pool], broker: NamedDependency[BrokerMonitor]) -> Response[Health]:
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), 2.0)
        database = ComponentHealth(ok=True, detail="answering")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        database = ComponentHealth(ok=False, detail=f"not answering ({type(exc).__name__})")
    broker_state = ComponentHealth(ok=broker.ok, detail=broker.detail)
    status: Literal["ok", "degraded", "down"] = (
        "ok" if database.ok and broker.ok else ("degraded" if database.ok else "down")
    )
    body = Health(status=status, version=_version(), database=database, broker=broker_state)
    return Response(body, status_code=200 if database.ok else 503)
