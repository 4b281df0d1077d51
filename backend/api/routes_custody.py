"""Route handlers for the chain of identity and custody."""

from __future__ import annotations

from typing import Any

from backend.api.alerts import AlertsController
from backend.api.allocation import ROUTES as ALLOCATION_ROUTES
from backend.api.cases import CasesController, EventsController, UnitsController
from backend.api.labels import label, print_label
from backend.api.patients import ROUTES as PATIENT_ROUTES
from backend.api.shipments import ScansController, ShipmentsController
from backend.api.stream import stream

ROUTES: tuple[Any, ...] = (
    CasesController,
    UnitsController,
    EventsController,
    ShipmentsController,
    ScansController,
    AlertsController,
    stream,
    label,
    print_label,
    *PATIENT_ROUTES,
    *ALLOCATION_ROUTES,
)
