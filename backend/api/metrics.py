"""`GET /metrics`: ingest counters in the Prometheus text format, for administrators and the bridge's
service account (a Prometheus scrape job signs in as one of them and sends the bearer token)."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from backend.domain.access import Role, policy
from backend.services.metrics import CONTENT_TYPE, IngestMetrics

_STATE_KEY = "ingest_metrics"


def provide_ingest_metrics(state: State) -> IngestMetrics:
    """One IngestMetrics per application (so per worker process), made on first use. The event loop runs
    this without awaiting in between, so two requests cannot both create one."""
    metrics = state.get(_STATE_KEY)
    if not isinstance(metrics, IngestMetrics):
        metrics = IngestMetrics()
        state[_STATE_KEY] = metrics
    return metrics


METRICS_DEPENDENCY = {"ingest_metrics": Provide(provide_ingest_metrics, sync_to_thread=False)}


@get(
    "/metrics",
    opt=policy(Role.ADMIN, Role.BRIDGE),
    dependencies=METRICS_DEPENDENCY,
    operation_id="metrics",
    tags=["telemetry"],
)
async def metrics(ingest_metrics: NamedDependency[IngestMetrics]) -> Response[str]:
    """Ingest counters of this worker process (readings, duplicates, dead letters, latency, lag)."""
    return Response(content=ingest_metrics.render(), media_type=CONTENT_TYPE)
