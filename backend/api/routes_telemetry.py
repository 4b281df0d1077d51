"""Route handlers for logger telemetry: ingest, device registry, metrics."""

from __future__ import annotations

from typing import Any

from backend.api.ingest import ingest_telemetry, list_dead_letters
from backend.api.loggers import LoggersController
from backend.api.metrics import metrics

ROUTES: tuple[Any, ...] = (ingest_telemetry, list_dead_letters, LoggersController, metrics)
