"""Alerts for coordinators: list, acknowledge with a comment, close with a reason."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from backend.api.cases import PEOPLE
from backend.api.custody_schemas import AlertAck, AlertClose
from backend.api.reads import read, reads
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import alerts


class AcknowledgementRead(msgspec.Struct, frozen=True):
    by: str
    by_name: str
    at: datetime
    comment: str
    # The alarm state it acknowledged and the one it left (cleared_unacknowledged -> resolved...).
    status_before: str
    status_after: str
    severity: str


class AlertRead(msgspec.Struct, frozen=True):
    id: int
    kind: str
    severity: str
    status: str
    title: str
    detail: str
    coi: str | None
    shipment_id: str | None
    unit_id: str | None
    logger_id: str | None
    sites: list[str]
    started_at: datetime
    ended_at: datetime | None
    peak_value: float | None
    rule: Any
    event_id: int | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None
    # Every acknowledgement, oldest first; acknowledged_* above are the first of them.
    acknowledgements: list[AcknowledgementRead] = msgspec.field(default_factory=list)


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
    ) -> list[AlertRead]:
        """Alerts at your sites, critical first; `status` may repeat. Alarm states (ISA-18.2): `open`
        (active, unacknowledged), `acknowledged` (active, acknowledged), `cleared_unacknowledged` (a
        critical alert whose condition ended before anyone acknowledged it: it stays until acknowledged),
        `resolved` (back to normal), `closed` (shelved or closed with a reason, or withdrawn)."""
        return reads(await alerts.list_alerts(pool, principal, status, coi, shipment_id, limit), AlertRead)

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
    ) -> AlertRead:
        """Acknowledge with a comment. An active alert becomes `acknowledged`; a latched one
        (`cleared_unacknowledged`) becomes `resolved`; acknowledging again adds to the alert's
        `acknowledgements` history and never replaces the first."""
        return read(await alerts.acknowledge(pool, principal, alert_id, data.comment), AlertRead)

    @post("/{alert_id:int}/close", opt=policy(Role.COORDINATOR, Role.QA), operation_id="closeAlert")
    async def close(
        self,
        alert_id: FromPath[int],
        data: JSONBody[AlertClose],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> AlertRead:
        """Close (shelve) with a reason (coordinators and QA): an active or latched alert."""
        return read(await alerts.close(pool, principal, alert_id, data.reason), AlertRead)
