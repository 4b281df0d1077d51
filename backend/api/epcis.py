"""EPCIS 2.0: export a case's or a shipment's custody steps, and capture partners' EPCIS documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import msgspec
from litestar import Controller, HttpMethod, Request, Response, get, post, put, route
from litestar.di import NamedDependency
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import (
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from backend.api.errors import Problem, problem_response
from backend.db.types import Pool
from backend.domain.access import RECORD_READERS, Principal, Role, policy
from backend.domain.errors import InvalidInput
from backend.epcis import capture as epcis_capture
from backend.epcis import jobs, products
from backend.epcis import query as epcis_query
from backend.epcis.export import Known, case_document, shipment_document
from backend.epcis.validate import SchemaUnavailable
from backend.reports.record import CaseRecord, case_record, load_record
from backend.services import objects
from backend.services.shipments import get_shipment
from backend.services.visibility import site_filter
from backend.settings import Settings

EPCIS_JSON_LD: Final = "application/ld+json"
# Couriers exchange shipment events with their own systems; capture is for those who scan.
SHIPMENT_READERS: Final = (*RECORD_READERS, Role.COURIER)
CAPTURERS: Final = (Role.COURIER, Role.PHARMACIST, Role.MANUFACTURING)
PRODUCT_READERS: Final = tuple(dict.fromkeys((*SHIPMENT_READERS, *CAPTURERS)))
ERROR_BEHAVIOUR: Final = "GS1-Capture-Error-Behaviour"
# The capture interface's limits, announced on its answers as EPCIS 2.0 names them.
LIMITS: Final = {
    "GS1-EPCIS-Version": "2.0",
    "GS1-CBV-Version": "2.0",
    "GS1-EPCIS-Capture-Limit": str(epcis_capture.CAPTURE_LIMIT),
    "GS1-EPCIS-Capture-File-Size-Limit": str(epcis_capture.FILE_SIZE_LIMIT),
}


class EpcisController(Controller):
    path = "/api/v1"
    tags = ("epcis",)

    @get("/cases/{coi:str}/epcis", opt=policy(*RECORD_READERS), operation_id="caseEpcis")
    async def case_epcis(
        self, coi: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Response[dict[str, Any]]:
        """The case's accepted custody steps as an EPCIS 2.0 document (JSON-LD, CBV 2.0)."""
        record = await case_record(pool, principal, coi)
        known = await _known(pool, record)
        return Response(case_document(record, datetime.now(UTC), known), media_type=EPCIS_JSON_LD)

    @get("/shipments/{shipment_id:str}/epcis", opt=policy(*SHIPMENT_READERS), operation_id="shipmentEpcis")
    async def shipment_epcis(
        self, shipment_id: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Response[dict[str, Any]]:
        """One shipment leg's steps: packing, shipping, hand-overs, receiving with the temperature summary."""
        shipment = await get_shipment(pool, principal, shipment_id)
        record = await _record_of_shipment(pool, principal, shipment.coi)
        known = await _known(pool, record)
        return Response(
            shipment_document(record, shipment.id, datetime.now(UTC), known), media_type=EPCIS_JSON_LD
        )

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
        `LT_eventTime`, `EQ_bizStep`, `EQ_disposition`, `MATCH_epc`, `MATCH_parentID`, `MATCH_inputEPC`,
        `MATCH_outputEPC`, `MATCH_anyEPC`, `EQ_bizLocation` (each may repeat or be comma-separated),
        `perPage` (1-100, default 30) and `nextPageToken`; the next page's address is in the
        `Link: <...>; rel="next"` header."""
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
        status_code=HTTP_202_ACCEPTED,
        # A document of many events: more than a command, still bounded (the app's limit is 1 MiB).
        request_max_body_size=epcis_capture.FILE_SIZE_LIMIT,
        responses={
            413: ResponseSpec(Problem, description="over GS1-EPCIS-Capture-Limit or the file size limit"),
            422: ResponseSpec(Problem, description="not conformant EPCIS 2.0 / CBV 2.0; nothing applied"),
            503: ResponseSpec(Problem, description="the EPCIS schema is not available; nothing applied"),
        },
    )
    async def capture(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        """Capture an EPCIS 2.0 document (EPCIS 2.0 capture interface): each event naming Celltrail units
        and shipments is recorded as a custody scan. Answers 202 with the capture job's address in
        `Location`; the job (`GET` on it) tells whether the document was captured and each event's error.
        `GS1-Capture-Error-Behaviour: rollback` (the default) records all events or none;
        `proceed` records the events without error and reports the others."""
        behaviour = epcis_capture.error_behaviour(request.headers.get(ERROR_BEHAVIOUR))
        try:
            # Read here rather than by Litestar, so that a document over the size limit is answered with
            # the limit's name and value.
            raw = await request.body()
        except RequestEntityTooLarge:
            return problem_response(
                request,
                HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                "Capture too large",
                f"a capture takes a document of at most {epcis_capture.FILE_SIZE_LIMIT} bytes "
                "(GS1-EPCIS-Capture-File-Size-Limit): send it in parts; nothing was applied",
                headers=LIMITS,
            )
        try:
            data = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"the body is not JSON ({exc}); nothing was applied") from None
        try:
            count = epcis_capture.check(data)
        except SchemaUnavailable as exc:
            return problem_response(request, HTTP_503_SERVICE_UNAVAILABLE, "Service unavailable", str(exc))
        except epcis_capture.TooLarge as exc:
            return problem_response(
                request, HTTP_413_REQUEST_ENTITY_TOO_LARGE, "Capture too large", str(exc), headers=LIMITS
            )
        job_id = jobs.new_id()
        async with pool.acquire() as conn:
            await jobs.create(conn, job_id, principal, behaviour, count)
        await epcis_capture.run(pool, job_id, principal, data, settings.handover_confirm_minutes)
        async with pool.acquire() as conn:
            job = await objects.capture_job(conn, principal, job_id)
        return Response(
            _receipt(job),
            status_code=HTTP_202_ACCEPTED,
            headers={"Location": f"{request.url.path}/{job_id}", **LIMITS},
        )

    @get("/epcis/capture", opt=policy(*CAPTURERS), operation_id="listEpcisCaptures")
    async def list_captures(
        self, principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Response[list[epcis_capture.JobView]]:
        """The latest capture jobs of your sites, newest first; the capture limits are in the headers."""
        async with pool.acquire() as conn:
            found = await jobs.listed(conn, principal)
        return Response([epcis_capture.view(job) for job in found], headers=LIMITS)

    # Litestar gives a path its own OPTIONS answer unless the first handler registered for the path is
    # one (a controller registers its handlers by name): hence this handler's name sorts before `capture`.
    @route(
        "/epcis/capture",
        http_method=[HttpMethod.OPTIONS],
        opt=policy(*CAPTURERS),
        operation_id="discoverEpcisCapture",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def announce_capture(self) -> Response[None]:
        """What the capture interface takes: EPCIS and CBV versions, the capture limits and the error
        behaviours (EPCIS 2.0 discovery of `/capture`)."""
        return Response(
            None,
            status_code=HTTP_204_NO_CONTENT,
            headers={"Allow": "OPTIONS, GET, POST", **LIMITS, ERROR_BEHAVIOUR: "rollback, proceed"},
        )

    @get("/epcis/products", opt=policy(*PRODUCT_READERS), operation_id="listEpcisProducts")
    async def list_products(self, pool: NamedDependency[Pool]) -> list[products.Product]:
        """Products with a GTIN: their units are SGTINs in EPCIS events (GTIN and the unit id without
        hyphens as serial)."""
        async with pool.acquire() as conn:
            return await products.all_products(conn)

    @put(
        "/epcis/products/{product_name:str}",
        opt=policy(Role.ADMIN),
        operation_id="setEpcisProductGtin",
        responses={422: ResponseSpec(Problem, description="not a GTIN, or one another product has")},
    )
    async def set_product_gtin(
        self,
        product_name: FromPath[str],
        data: JSONBody[GtinBody],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> products.Product:
        """Give a product (as units name it) its GTIN-8, -12, -13 or -14; its units are then identified by
        SGTIN in exports, queries and captures."""
        name = product_name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidInput("a product name has 1 to 200 characters", field_errors={"product": "length"})
        gtin = products.gtin14(data.gtin)
        async with pool.acquire() as conn, conn.transaction():
            return await products.set_gtin(conn, principal, name, gtin)

    @get(
        "/epcis/capture/{capture_id:str}",
        opt=policy(*CAPTURERS),
        operation_id="getEpcisCapture",
        responses={404: ResponseSpec(Problem, description="no such capture job among your sites'")},
    )
    async def get_capture(
        self, capture_id: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Response[epcis_capture.JobView]:
        """A capture job: `running`, then `success` and, per event, recorded, ignored (not a custody
        step for Celltrail), rolled back or in error with its reason; `errors` lists the events in
        error as problems."""
        async with pool.acquire() as conn:
            job = await objects.capture_job(conn, principal, capture_id)
        return Response(epcis_capture.view(job), headers=LIMITS)


class GtinBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    gtin: Annotated[str, msgspec.Meta(max_length=14)]


def _receipt(job: jobs.CaptureJob) -> dict[str, Any]:
    """The 202 answer's body: what became of the document. The job itself is at the Location."""
    counts = {
        status: sum(1 for o in job.outcome if o["status"] == status)
        for status in ("recorded", "ignored", "error", "rolled_back")
    }
    if job.success:
        detail = f"captured: {counts['recorded']} event(s) recorded, {counts['ignored']} ignored"
        if counts["error"]:
            detail += f", {counts['error']} in error and left out"
    else:
        detail = (
            f"not captured: {counts['error'] or len(job.errors)} error(s), nothing of the document was "
            "recorded; the capture job names each event's error"
        )
    return {
        "running": job.running,
        "success": job.success,
        "captureErrorBehaviour": job.error_behaviour,
        "eventCount": job.event_count,
        "accepted": counts["recorded"] if job.success else 0,
        "detail": detail,
    }


async def _known(pool: Pool, record: CaseRecord) -> Known:
    """What partners' captured events said of the record's steps (stored with the steps, never changed)
    and the products' GTINs."""
    async with pool.acquire() as conn:
        said = await jobs.captured_for(conn, [e.id for e in record.events])
        return Known(said=said, gtins=await products.gtins(conn))


async def _record_of_shipment(pool: Pool, principal: Principal, coi: str) -> CaseRecord:
    """The case record behind a visible shipment. The shipment's own events are all it exports, so a
    courier who sees the shipment needs no access to the rest of the case."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return await load_record(conn, coi, patient_visible=False, requested_by=principal.full_name)
