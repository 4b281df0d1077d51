"""Bedside verification and the people a shipment can be handed over to. At the bedside the page sends
the wristband and the bag it scanned; a STOP is recorded in every case involved and alerted, a MATCH
only answered (the signed infusion is the record)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from backend.api.errors import PROBLEM_JSON, Problem
from backend.api.schemas import Command, SiteCode
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import bedside, receivers

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class BedsideCheck(Command):
    idempotency_key: Annotated[str, msgspec.Meta(min_length=8, max_length=100)]
    site: SiteCode
    wristband: Code
    bag: Code
    device_time: datetime | None = None


class BedsideVerdict(msgspec.Struct, kw_only=True):
    verdict: Literal["MATCH", "STOP"]
    detail: str
    coi: str
    unit_id: str
    refusal: str | None
    event_ids: list[int]
    cois: list[str]


@post(
    "/api/v1/bedside/verifications",
    opt=policy(Role.PHARMACIST),
    operation_id="verifyAtBedside",
    tags=["scans"],
    status_code=HTTP_200_OK,
    responses={
        409: ResponseSpec(Problem, description="STOP: recorded in each case involved and alerted"),
        404: ResponseSpec(Problem, description="no such case or bag (or one of a site you are not bound to)"),
    },
)
async def verify_at_bedside(
    data: JSONBody[BedsideCheck], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
) -> Response[Any]:
    """Compare a wristband with a bag. MATCH answers 200 and records nothing; STOP answers 409 (a problem
    naming the refusal) after recording it in the wristband's case and the bag's and raising a critical
    alert for each. The same idempotency key answers the first answer again."""
    verdict = await bedside.verify(
        pool,
        principal,
        bedside.Verification(
            idempotency_key=data.idempotency_key,
            site=data.site,
            wristband=data.wristband,
            bag=data.bag,
            device_time=data.device_time,
        ),
    )
    if verdict.match:
        body = BedsideVerdict(
            verdict="MATCH",
            detail=verdict.detail,
            coi=verdict.coi,
            unit_id=verdict.unit_id,
            refusal=None,
            event_ids=[],
            cois=[verdict.coi],
        )
        return Response(body, status_code=HTTP_200_OK)
    problem = {
        "type": f"urn:celltrail:problem:{(verdict.refusal or 'stop').replace('_', '-')}",
        "title": "STOP — do not infuse",
        "status": 409,
        "detail": verdict.detail,
        "errors": [],
        "verdict": "STOP",
        "refusal": verdict.refusal,
        "coi": verdict.coi,
        "unit_id": verdict.unit_id,
        "event_ids": verdict.event_ids,
        "cois": verdict.cois,
    }
    return Response(problem, status_code=409, media_type=PROBLEM_JSON)


@get(
    "/api/v1/shipments/{shipment_id:str}/receivers",
    opt=policy(Role.COURIER, Role.PHARMACIST, Role.MANUFACTURING, Role.COORDINATOR),
    operation_id="shipmentReceivers",
    tags=["shipments"],
)
async def shipment_receivers(
    shipment_id: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
) -> receivers.Receivers:
    """The people a courier may hand this shipment over to: those bound to its destination site whose
    role takes custody (courier, pharmacist, manufacturing). Read-only."""
    return await receivers.of_shipment(pool, principal, shipment_id)
