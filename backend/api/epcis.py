"""EPCIS 2.0: export a case's or a shipment's custody steps, and capture partners' EPCIS documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from backend.api.errors import Problem, problem_response
from backend.api.reports import RECORD_READERS
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.epcis import query as epcis_query
from backend.epcis.capture import CaptureResult, capture
from backend.epcis.export import case_document, shipment_document
from backend.epcis.validate import SchemaUnavailable
from backend.reports.record import CaseRecord, case_record, load_record
from backend.services.shipments import get_shipment
from backend.services.visibility import site_filter
from backend.settings import Settings

EPCIS_JSON_LD: Final = "application/ld+json"
# Couriers exchange shipment events with their own systems; capture is for those who scan.
SHIPMENT_READERS: Final = (*RECORD_READERS, Role.COURIER)
CAPTURERS: Final = (Role.COURIER, Role.PHARMACIST, Role.MANUFACTURING)
MAX_DOCUMENT_BYTES: Final = 4 * 1024 * 1024


class EpcisController(Controller):
    path = "/api/v1"
    tags = ("epcis",)

    @get("/cases/{coi:str}/epcis", opt=policy(*RECORD_READERS), operation_id="caseEpcis")
    async def case_epcis(
        self, coi: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Response[dict[str, Any]]:
        """The case's accepted custody steps as an EPCIS 2.0 document (JSON-LD, CBV 2.0)."""
        record = await case_record(pool, principal, coi)
        return Response(case_document(record, datetime.now(UTC)), media_type=EPCIS_JSON_LD)

    @get("/shipments/{shipment_id:str}/epcis", opt=policy(*SHIPMENT_READERS), operation_id="shipmentEpcis")
    async def shipment_epcis(
        self, shipment_id: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Response[dict[str, Any]]:
        """One shipment leg's steps: packing, shipping, hand-overs, receiving with the temperature summary."""
        shipment = await get_shipment(pool, principal, shipment_id)
        record = await _record_of_shipment(pool, principal, shipment.coi)
        return Response(shipment_document(record, shipment.id, datetime.now(UTC)), media_type=EPCIS_JSON_LD)

    @get(
        "/epcis/events",
        opt=policy(*RECORD_READERS),
        operation_id="queryEpcisEvents",
        responses={422: ResponseSpec(Problem, description="a query parameter is not understood")},
    )
    async def query_events(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Response[dict[str, Any]]:
        """EPCIS 2.0 SimpleEventQuery over the events you may see: `eventType`, `GE_eventTime`,
        `LT_eventTime`, `EQ_bizStep`, `EQ_disposition`, `MATCH_epc`, `EQ_bizLocation` (each may repeat or
        be comma-separated), `perPage` (1-100, default 30) and `nextPageToken`; the next page's address is
        in the `Link: <...>; rel="next"` header."""
        params = {key: request.query_params.getall(key) for key in request.query_params}
        query = epcis_query.parse_query(params)
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            page = await epcis_query.query_events(conn, site_filter(principal), query, principal.full_name)
        headers = {}
        if page.next_page is not None:
            token = epcis_query.encode_cursor(page.next_page)
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "nextPageToken"]
            headers["Link"] = (
                f'<{request.url.path}?{urlencode([*kept, ("nextPageToken", token)])}>; rel="next"'
            )
        return Response(
            epcis_query.query_document(page.events, datetime.now(UTC)),
            media_type=EPCIS_JSON_LD,
            headers=headers,
        )

    @post(
        "/epcis/capture",
        opt=policy(*CAPTURERS),
        operation_id="captureEpcis",
        status_code=HTTP_200_OK,
        # A document of many events: more than a command, still bounded (the app's limit is 1 MiB).
        request_max_body_size=MAX_DOCUMENT_BYTES,
        responses={
            422: ResponseSpec(Problem, description="not conformant EPCIS 2.0 / CBV 2.0; nothing applied"),
            503: ResponseSpec(Problem, description="the EPCIS schema is not available; nothing applied"),
        },
    )
    async def capture(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[dict[str, Any]],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        """Validate an EPCIS 2.0 document and record each event naming Celltrail units and shipments as a
        custody scan; answers which events were accepted and which rejected, and why."""
        try:
            result: CaptureResult = await capture(pool, principal, data, settings.handover_confirm_minutes)
        except SchemaUnavailable as exc:
            return problem_response(request, HTTP_503_SERVICE_UNAVAILABLE, "Service unavailable", str(exc))
        return Response(result)


async def _record_of_shipment(pool: Pool, principal: Principal, coi: str) -> CaseRecord:
    """The case record behind a visible shipment. The shipment's own events are all it exports, so a
    courier who sees the shipment needs no access to the rest of the case."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return await load_record(conn, coi, patient_visible=False, requested_by=principal.full_name)
