"""CSV exports: a shipment's or a logger's readings, and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from backend.api.reports import NO_STORE
from backend.db.types import Pool
from backend.domain.access import RECORD_READERS, Principal, Role, policy
from backend.reports import csv_export

CSV: Final = "text/csv; charset=utf-8"
READING_READERS: Final = (*RECORD_READERS, Role.COURIER)
# As the logger registry: administrators anywhere, coordinators for loggers their sites own.
LOGGER_READERS: Final = (Role.ADMIN, Role.COORDINATOR)


def _csv(content: str, filename: str) -> Response[str]:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', **NO_STORE}
    return Response(content, media_type=CSV, headers=headers)


class ExportsController(Controller):
    path = "/api/v1"
    tags = ("exports",)

    @get(
        "/shipments/{shipment_id:str}/readings.csv",
        opt=policy(*READING_READERS),
        operation_id="shipmentReadingsCsv",
        media_type=CSV,
    )
    async def shipment_readings(
        self,
        shipment_id: FromPath[str],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> Response[str]:
        """The shipment's readings with since <= ts < until (all when omitted), oldest first."""
        content = await csv_export.shipment_readings(pool, principal, shipment_id, since, until)
        return _csv(content, f"{shipment_id}-readings.csv")

    @get(
        "/exports/loggers/{logger_id:str}/readings.csv",
        opt=policy(*LOGGER_READERS),
        operation_id="loggerReadingsCsv",
        media_type=CSV,
    )
    async def logger_readings(
        self,
        logger_id: FromPath[str],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> Response[str]:
        """The logger's readings with since <= ts < until (all when omitted), oldest first."""
        content = await csv_export.logger_readings(pool, principal, logger_id, since, until)
        return _csv(content, f"{logger_id}-readings.csv")

    @get("/exports/alerts.csv", opt=policy(*RECORD_READERS), operation_id="alertsCsv", media_type=CSV)
    async def alerts(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        site: FromQuery[str | None] = None,
    ) -> Response[str]:
        """Alerts started in [since, until) at your sites (or at `site`), oldest first."""
        content = await csv_export.alerts(pool, principal, since, until, site)
        return _csv(content, "alerts.csv")
