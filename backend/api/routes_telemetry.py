"""Route handlers for logger telemetry: ingest, device registry, metrics."""

from __future__ import annotations

from typing import Any

ROUTES: tuple[Any, ...] = ()
