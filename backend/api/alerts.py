"""Alerts for coordinators: list, acknowledge with a comment, close with a reason."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from backend.api.cases import PEOPLE
from backend.api.custody_schemas import AlertAck, AlertClose
from backend.db.repo import alerts
from backend.db.repo.alerts import AlertRow
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import alarms
from backend.services.visibility import site_filter


class AlertsController(Controller):
    path = "/api/v1/alerts"
    tags = ("alerts",)

    @get("/", opt=policy(*PEOPLE), operation_id="listAlerts")
    async def list_alerts(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        status: FromQuery[list[str] | None] = None,
        coi: FromQuery[str | None] = None,
        shipment_id: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
    ) -> list[AlertRow]:
        """Alerts at your sites, critical first; `status` may repeat. Alarm states (ISA-18.2): `open`
        (active, unacknowledged), `acknowledged` (active, acknowledged), `cleared_unacknowledged` (a
        critical alert whose condition ended before anyone acknowledged it: it stays until acknowledged),
        `resolved` (back to normal), `closed` (shelved or closed with a reason, or withdrawn)."""
        async with pool.acquire() as conn:
            return await alerts.list_for(
                conn, site_filter(principal), status, coi, shipment_id, limit, principal.courier_company
            )

    @post(
        "/{alert_id:int}/acknowledge",
        opt=policy(Role.COORDINATOR, Role.PHARMACIST, Role.QA, Role.MANUFACTURING),
        operation_id="acknowledgeAlert",
    )
    async def acknowledge(
        self,
        alert_id: FromPath[int],
        data: JSONBody[AlertAck],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> AlertRow:
        """Acknowledge with a comment. An active alert becomes `acknowledged`; a latched one
        (`cleared_unacknowledged`) becomes `resolved`; acknowledging again adds to the alert's
        `acknowledgements` history and never replaces the first."""
        return await alarms.acknowledge(pool, principal, alert_id, data.comment)

    @post("/{alert_id:int}/close", opt=policy(Role.COORDINATOR, Role.QA), operation_id="closeAlert")
    async def close(
        self,
        alert_id: FromPath[int],
        data: JSONBody[AlertClose],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> AlertRow:
        """Close (shelve) with a reason (coordinators and QA): an active or latched alert."""
        return await alarms.close(pool, principal, alert_id, data.reason)
