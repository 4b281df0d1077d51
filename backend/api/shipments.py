"""Shipments and the receipt desk (custody scans and hand-over confirmation: backend.api.scans)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from backend.api.cases import PEOPLE, recorded
from backend.api.custody_schemas import (
    ReceiptDecision,
    Recorded,
    ShipmentCreate,
    ShipmentRead,
)
from backend.db.repo.shipments import ShipmentRow
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import shipments


def shipment_read(row: ShipmentRow) -> ShipmentRead:
    return ShipmentRead(
        id=row.id,
        coi=row.coi,
        from_site=row.from_site,
        to_site=row.to_site,
        container_id=row.container_id,
        logger_id=row.logger_id,
        profile=f"{row.profile_code} v{row.profile_version}",
        limits=row.profile,
        planned_departure=row.planned_departure,
        planned_arrival=row.planned_arrival,
        seals=row.seals,
        waybill=row.waybill,
        status=row.status,
        holder=row.holder_name,
        departed_at=row.departed_at,
        arrived_at=row.arrived_at,
        received_at=row.received_at,
        units=row.manifest,
        packed=row.packed,
        receipt_scanned=row.receipt_scanned,
        pending_handover=row.open_handover_id,
        pending_handover_to=row.open_handover_to,
    )


class ShipmentsController(Controller):
    path = "/api/v1/shipments"
    tags = ("shipments",)

    @post(
        "/", opt=policy(Role.COORDINATOR, Role.MANUFACTURING, Role.PHARMACIST), operation_id="createShipment"
    )
    async def create(
        self,
        data: JSONBody[ShipmentCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ShipmentRead:
        """Plan a shipment of one case's units; it keeps the current version of its temperature profile."""
        row = await shipments.create_shipment(
            pool,
            principal,
            coi=data.coi,
            from_site=data.from_site,
            to_site=data.to_site,
            container_id=data.container_id,
            logger_id=data.logger_id,
            profile=data.profile,
            planned_departure=data.planned_departure,
            planned_arrival=data.planned_arrival,
            unit_ids=data.units,
            seals=data.seals,
            waybill=data.waybill,
            courier_organisation=data.courier_organisation,
        )
        return shipment_read(row)

    @get("/", opt=policy(*PEOPLE), operation_id="listShipments")
    async def list_shipments(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        active: FromQuery[bool] = True,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 200,
    ) -> list[ShipmentRead]:
        return [shipment_read(s) for s in await shipments.list_shipments(pool, principal, active, limit)]

    @get("/{shipment_id:str}", opt=policy(*PEOPLE), operation_id="getShipment")
    async def get_shipment(
        self, shipment_id: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> ShipmentRead:
        return shipment_read(await shipments.get_shipment(pool, principal, shipment_id))

    @get(
        "/{shipment_id:str}/receipt",
        opt=policy(Role.PHARMACIST, Role.MANUFACTURING, Role.COORDINATOR),
        operation_id="receiptView",
    )
    async def receipt(
        self, shipment_id: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> dict[str, Any]:
        """Expected vs scanned units, temperature summary, open alerts and the checklist."""
        view = await shipments.receipt_view(pool, principal, shipment_id)
        body = msgspec.to_builtins(view)
        body["shipment"] = msgspec.to_builtins(shipment_read(view.shipment))
        return dict(body)

    @post(
        "/{shipment_id:str}/receipt",
        opt=policy(Role.PHARMACIST, Role.MANUFACTURING),
        operation_id="decideReceipt",
    )
    async def decide(
        self,
        shipment_id: FromPath[str],
        data: JSONBody[ReceiptDecision],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Recorded:
        """Accept or quarantine a delivery, signed with the password (meaning shown on the record)."""
        appended = await shipments.decide_receipt(
            pool,
            principal,
            shipment_id,
            accept=data.decision == "accept",
            checklist=data.checklist,
            comment=data.comment,
            password=data.password,
            qa_override=msgspec.convert(data.qa_override, shipments.QaOverride, from_attributes=True)
            if data.qa_override
            else None,
        )
        return recorded(appended)
