"""Route handlers for temperature profiles, alert delivery subscriptions and summaries."""

from __future__ import annotations

from typing import Any

ROUTES: tuple[Any, ...] = ()
