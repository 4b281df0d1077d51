"""Liveness for load balancers and people: 200 when the database answers. Anyone sees the status; the
version and each component's detail (the broker's host and port among them) only a caller who presents a
valid token, because they tell an attacker what to look for and where."""

from __future__ import annotations

from importlib import metadata
from typing import Any, Literal

from litestar import Request, Response, get
from litestar.di import NamedDependency

from backend.api.schemas import ComponentHealth, Health
from backend.db.types import Pool
from backend.domain.access import PUBLIC
from backend.domain.errors import AuthenticationFailed
from backend.http.security import request_token
from backend.services import auth, health
from backend.services.broker_probe import BrokerMonitor


def _version() -> str:
    try:
        return metadata.version("celltrail")
    except metadata.PackageNotFoundError:
        return "unknown"


async def _signed_in(request: Request[Any, Any, Any], pool: Pool) -> bool:
    """Whether the request carries a valid token (header or session cookie). No token, a bad one or a
    database that cannot say: the anonymous answer, never an error — probes send no token."""
    try:
        token, _ = request_token(request)
        await auth.authenticate(pool, token)
    except (AuthenticationFailed, *health.FAULTS):
        return False
    return True


@get("/healthz", opt=PUBLIC, operation_id="health", tags=["health"], security=[])
async def healthz(
    request: Request[Any, Any, Any], pool: NamedDependency[Pool], broker: NamedDependency[BrokerMonitor]
) -> Response[Health]:
    """`{"status": "ok" | "degraded" | "down"}`: 200 while the database answers (degraded: the broker
    does not), 503 when it does not. With a valid token also the version and each component's detail."""
    probe = await health.database(pool)
    database = ComponentHealth(ok=probe.ok, detail=probe.detail)
    status: Literal["ok", "degraded", "down"] = (
        "ok" if database.ok and broker.ok else ("degraded" if database.ok else "down")
    )
    code = 200 if database.ok else 503
    if not (database.ok and await _signed_in(request, pool)):
        return Response(Health(status=status), status_code=code)
    broker_state = ComponentHealth(ok=broker.ok, detail=broker.detail)
    body = Health(status=status, version=_version(), database=database, broker=broker_state)
    return Response(body, status_code=code)
