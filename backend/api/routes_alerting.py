"""Route handlers for temperature profiles, alert delivery subscriptions and summaries."""

from __future__ import annotations

from typing import Any

from backend.api.profiles import ProfilesController
from backend.api.subscriptions import SubscriptionsController
from backend.api.summaries import case_temperature, shipment_temperature

ROUTES: tuple[Any, ...] = (
    ProfilesController,
    SubscriptionsController,
    shipment_temperature,
    case_temperature,
)
