"""`POST /api/v1/ingest/telemetry`: the firmware bridge delivers batches of readings, statuses and dead
letters (firmware_bridge/ingest_contract.py). A 200 means everything is committed; the bridge
acknowledges the MQTT messages only then. 400, 413, 415 and 422 tell it the batch can never succeed.
`GET /api/v1/dead-letters` shows administrators what could not become readings, and why."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_400_BAD_REQUEST, HTTP_415_UNSUPPORTED_MEDIA_TYPE

from backend.api.metrics import METRICS_DEPENDENCY
from backend.api.reads import reads
from backend.db.types import Pool
from backend.domain.access import Role, policy
from backend.domain.errors import InvalidInput
from backend.services import dead_letters, ingest
from backend.services.metrics import IngestMetrics
from firmware_bridge.ingest_contract import CONTENT_TYPE, INGEST_PATH, IngestBatch, IngestResult

JSON: Final = "application/json"
MAX_BATCH_BYTES: Final = 10_000_000
_msgpack_batch: Final = msgspec.msgpack.Decoder(IngestBatch)
_json_batch: Final = msgspec.json.Decoder(IngestBatch)
_msgpack: Final = msgspec.msgpack.Encoder()
_json: Final = msgspec.json.Encoder()
_DECODERS: Final[dict[str, msgspec.msgpack.Decoder[IngestBatch] | msgspec.json.Decoder[IngestBatch]]] = {
    CONTENT_TYPE: _msgpack_batch,
    JSON: _json_batch,
}


def _media_type(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _decode(request: Request[Any, Any, Any], body: bytes, metrics: IngestMetrics) -> IngestBatch:
    decoder = _DECODERS.get(_media_type(request))
    if decoder is None:
        metrics.refused("unsupported_media_type")
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"send the batch as {CONTENT_TYPE} (or {JSON}), not {_media_type(request) or 'nothing'}",
        )
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        metrics.refused("invalid")
        raise InvalidInput(f"the batch does not follow the ingest contract: {exc}") from None
    except msgspec.DecodeError as exc:
        metrics.refused("undecodable")
        raise HTTPException(
            status_code=HTTP_400_BAD_REQUEST, detail=f"the body is not a decodable batch: {exc}"
        ) from None


@post(
    INGEST_PATH,
    opt=policy(Role.BRIDGE),
    dependencies=METRICS_DEPENDENCY,
    status_code=HTTP_200_OK,
    operation_id="ingestTelemetry",
    tags=["telemetry"],
    # A full batch of the bridge's (thousands of readings and dead letters with their raw payloads) is
    # larger than any command: it keeps Litestar's former default rather than the app's 1 MiB.
    request_max_body_size=MAX_BATCH_BYTES,
    responses={HTTP_200_OK: ResponseSpec(IngestResult, description="Everything in the batch is committed")},
)
async def ingest_telemetry(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    ingest_metrics: NamedDependency[IngestMetrics],
) -> Response[bytes]:
    """Store a batch (`application/msgpack` or `application/json` IngestBatch) in one transaction.
    Readings are unique on (logger, ts): redelivered ones count as duplicates. Readings of loggers that
    are not registered or not active, and the bridge's own dead letters, go to the dead-letter table."""
    started = time.perf_counter()
    batch = _decode(request, await request.body(), ingest_metrics)
    outcome = await ingest.ingest(pool, batch)
    ingest_metrics.stored(
        stored=outcome.stored,
        duplicates=outcome.duplicates,
        statuses=outcome.statuses,
        dead_letter_kinds=outcome.new_dead_letter_kinds,
        newest_received=outcome.newest_received,
        seconds=time.perf_counter() - started,
    )
    result = IngestResult(
        stored=outcome.stored, duplicates=outcome.duplicates, dead_lettered=outcome.dead_lettered
    )
    if CONTENT_TYPE in request.headers.get("accept", ""):
        return Response(_msgpack.encode(result), media_type=CONTENT_TYPE)
    return Response(_json.encode(result), media_type=JSON)


class DeadLetterRead(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    reason: str
    origin: str
    topic: str | None
    # Base64 in JSON: the payload exactly as it arrived (or, for an unknown logger's reading, as JSON).
    payload: bytes
    logger_id: str | None
    reading_ts: datetime | None
    received_at: datetime
    stored_at: datetime
    batch_id: str
    bridge_id: str


@get("/api/v1/dead-letters", opt=policy(Role.ADMIN), operation_id="listDeadLetters", tags=["telemetry"])
async def list_dead_letters(
    pool: NamedDependency[Pool],
    logger_id: FromQuery[str | None] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> list[DeadLetterRead]:
    """The newest dead letters, for review: what arrived, why it could not become a reading."""
    return reads(await dead_letters.recent(pool, logger_id, limit), DeadLetterRead)
