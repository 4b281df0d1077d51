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
from backend.domain.errors import Conflict
from backend.services import ledger, objects
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
        """Alerts at your sites, critical first; `status` may repeat (open, acknowledged, closed...)."""
        async with pool.acquire() as conn:
            return await alerts.list_for(conn, site_filter(principal), status, coi, shipment_id, limit)

    async def _change(
        self, pool: Pool, principal: Principal, alert_id: int, closing: bool, text: str
    ) -> AlertRow:
        async with pool.acquire() as conn, conn.transaction():
            alert = await objects.alert(conn, principal, alert_id, lock=True)
            if alert.status in ("resolved", "closed"):
                raise Conflict(f"alert {alert_id} is already {alert.status}")
            if closing:
                await alerts.close(conn, alert_id, principal.user_id, text)
            else:
                await alerts.acknowledge(conn, alert_id, principal.user_id, text)
            await ledger.announce(
                conn,
                "alert",
                alert.sites,
                alert.coi,
                {
                    "id": alert_id,
                    "status": "closed" if closing else "acknowledged",
                    "by": principal.full_name,
                },
            )
            changed = await alerts.get(conn, alert_id)
        assert changed is not None
        return changed

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
        return await self._change(pool, principal, alert_id, False, data.comment)

    @post("/{alert_id:int}/close", opt=policy(Role.COORDINATOR, Role.QA), operation_id="closeAlert")
    async def close(
        self,
        alert_id: FromPath[int],
        data: JSONBody[AlertClose],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> AlertRow:
        """Close with a reason (coordinators and QA)."""
        return await self._change(pool, principal, alert_id, True, data.reason)
