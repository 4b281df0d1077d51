"""Route handlers for records and interoperability: vein-to-vein report, EPCIS, CSV exports."""

from __future__ import annotations

from typing import Any

from backend.api.epcis import EpcisController
from backend.api.exports import ExportsController
from backend.api.reports import ReportsController

ROUTES: tuple[Any, ...] = (ReportsController, EpcisController, ExportsController)
