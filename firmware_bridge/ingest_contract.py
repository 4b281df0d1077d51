"""Wire types between the firmware bridge and the backend's ingest endpoint.

The bridge sends ``POST {backend}/api/v1/ingest/telemetry`` with ``Content-Type: application/msgpack``
and an :class:`IngestBatch` encoded by ``msgspec.msgpack``. Datetimes travel as msgpack timestamp
extensions (type -1) and are always timezone-aware UTC. The backend answers:

* ``200`` with an :class:`IngestResult` once everything in the batch is durably committed. Readings are
  unique on ``(logger_id, ts)``, so a redelivered batch (same ``batch_id``) or reading is harmless and
  counted as a duplicate. Readings from loggers the backend does not know it moves to its own
  dead-letter table and counts in ``dead_lettered``.
* ``401``: the token expired; the bridge logs in again and resends.
* ``5xx``, a timeout or a refused connection: the bridge keeps the batch on disk and retries.
* ``400``, ``413``, ``422``: the batch can never succeed; the bridge moves it aside for review.

This module imports only msgspec and the standard library so the backend can import it as it is.
Decoding is lenient about unknown fields in both directions, so a newer bridge and an older backend
(or the other way round) keep talking while a field is being added.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

import msgspec

INGEST_PATH: Final = "/api/v1/ingest/telemetry"
LOGIN_PATH: Final = "/api/v1/auth/login"
CONTENT_TYPE: Final = "application/msgpack"

LOGGER_ID_PATTERN: Final = r"^LGR-[A-Z0-9]{4,12}$"

LoggerId = Annotated[str, msgspec.Meta(pattern=LOGGER_ID_PATTERN)]
UtcDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Percent = Annotated[int, msgspec.Meta(ge=0, le=100)]


class IngestReading(msgspec.Struct, frozen=True, kw_only=True):
    """One temperature sample as the logger took it, plus when the bridge received it."""

    logger_id: LoggerId
    ts: UtcDatetime
    temp_c: float
    battery_pct: Percent | None = None
    lid_open: bool | None = None
    # The binary frame's per-reading sample counter (JSON telemetry has none); lets the backend see gaps.
    seq: int | None = None
    # Set by firmware that reports "battery low" as a flag without a percentage.
    low_battery: bool | None = None
    received_at: UtcDatetime


class LoggerStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A logger's ``celltrail/v1/loggers/{id}/status`` message (its birth or last-will)."""

    logger_id: LoggerId
    online: bool
    # The status's own "ts" when the logger sent one, otherwise when the bridge received it.
    ts: UtcDatetime
    received_at: UtcDatetime
    # A retained status replayed by the broker on subscribe is old news, not a fresh event.
    retained: bool = False
    battery_pct: Percent | None = None
    firmware: str | None = None


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message the bridge could not turn into readings, kept whole for review."""

    topic: str
    payload: bytes
    # A short machine-readable class: malformed, bad_topic, crc, implausible, future_ts,
    # logger_mismatch, too_large.
    kind: str
    reason: str
    received_at: UtcDatetime
    logger_id: str | None = None


class IngestBatch(msgspec.Struct, frozen=True, kw_only=True):
    # Unique per batch; a retried batch keeps its id so the backend may recognise the replay.
    batch_id: str
    bridge_id: str
    readings: list[IngestReading] = msgspec.field(default_factory=list)
    statuses: list[LoggerStatus] = msgspec.field(default_factory=list)
    dead_letters: list[DeadLetter] = msgspec.field(default_factory=list)


class IngestResult(msgspec.Struct, frozen=True, kw_only=True):
    stored: int
    duplicates: int
    dead_lettered: int


_batch_encoder = msgspec.msgpack.Encoder()
_batch_decoder = msgspec.msgpack.Decoder(IngestBatch)
_result_decoder = msgspec.msgpack.Decoder(IngestResult)
_result_json_decoder = msgspec.json.Decoder(IngestResult)


def encode_batch(batch: IngestBatch) -> bytes:
    return _batch_encoder.encode(batch)


def decode_batch(body: bytes) -> IngestBatch:
    """Raises ``msgspec.ValidationError`` / ``msgspec.DecodeError`` on a bad body (-> HTTP 400/422)."""
    return _batch_decoder.decode(body)


def encode_result(result: IngestResult) -> bytes:
    return _batch_encoder.encode(result)


def decode_result(body: bytes, content_type: str) -> IngestResult:
    """The backend may answer in msgpack or JSON; both carry the same fields."""
    if "json" in content_type:
        return _result_json_decoder.decode(body)
    return _result_decoder.decode(body)
