"""Pure decoders: (topic, payload bytes, receive time) -> readings and statuses, or a dead letter.

Nothing here reads a clock or does I/O, so every rule is tested on captured payloads. A payload that
breaks a rule becomes a :class:`DeadLetter` naming the rule; it is never raised as an exception, so one
bad logger cannot stop the bridge.

Rules, each a dead-letter ``kind``:

* ``bad_topic``: the topic is not a logger topic or its logger id is not ``LGR-`` + 4..12 of A-Z0-9.
* ``too_large``: the payload exceeds ``Limits.max_payload_bytes`` or carries too many readings.
* ``too_deep``: JSON nested deeper than ``Limits.max_depth`` (checked before parsing: the parser
  recurses, and a 2 KB payload nested 1,000 levels deep used to raise ``RecursionError`` and stall the
  bridge's in-flight window for every logger).
* ``malformed``: not valid JSON / not a valid binary frame / a required field is missing or mistyped /
  a timestamp has no UTC offset / no reading at all.
* ``crc``: a binary frame whose CRC-16 does not match.
* ``logger_mismatch``: the logger id inside the payload differs from the one in the topic.
* ``implausible``: a temperature outside ``[min_temp_c, max_temp_c]`` or not finite, or a timestamp
  before ``min_ts`` (a logger whose clock was reset reports 1970).
* ``future_ts``: a timestamp more than ``max_future_s`` after the bridge received it.
* ``undecodable``: the decoder failed in a way no rule above foresaw (a last line of defence: the
  message is still dead-lettered and acknowledged, never raised).

A message with one bad reading is dead-lettered whole: the payload stays together for the review, and
a sensor that reports -300 °C once is not trusted for its neighbours either.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

import msgspec

from firmware_bridge import frame, topics
from firmware_bridge.ingest_contract import DeadLetter, IngestReading, LoggerStatus, Percent, UtcDatetime


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    # Liquid nitrogen boils at -195.8 °C, the coldest thing in the chain; a box above +100 °C is a
    # broken sensor, not a warm day.
    min_temp_c: float = -200.0
    max_temp_c: float = 100.0
    max_future_s: float = 600.0
    min_ts: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_payload_bytes: int = 4 * 1024 * 1024
    # A logger sampling every minute that was offline for a month flushes about 43,000 readings.
    max_readings: int = 50_000
    # The contract nests three levels ({"readings": [{...}]}); unknown fields firmware may add get
    # room to spare, far below the parser's recursion limit.
    max_depth: int = 32


DEFAULT_LIMITS: Final = Limits()


class TelemetryReading(msgspec.Struct, frozen=True):
    ts: UtcDatetime
    temp_c: float


class TelemetryMessage(msgspec.Struct, frozen=True):
    """The JSON telemetry contract. Unknown fields are allowed: firmware adds fields before we do."""

    logger_id: str
    readings: list[TelemetryReading]
    battery_pct: Percent | None = None
    lid_open: bool | None = None


class StatusMessage(msgspec.Struct, frozen=True):
    online: bool
    logger_id: str | None = None
    ts: UtcDatetime | None = None
    battery_pct: Percent | None = None
    firmware: str | None = None


class Decoded(NamedTuple):
    readings: list[IngestReading]
    status: LoggerStatus | None


_telemetry_decoder: Final = msgspec.json.Decoder(TelemetryMessage)
_status_decoder: Final = msgspec.json.Decoder(StatusMessage)


class _Reject(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


# Only what decides nesting survives: brackets and string quotes (a bracket inside a string is text).
_NOT_STRUCTURE: Final = bytes(b for b in range(256) if b not in b'[]{}"')
_ESCAPE: Final = re.compile(rb"\\.", re.DOTALL)
_STRING: Final = re.compile(rb'"[^"]*"')
_COUNT_IN_PLACE: Final = 16 * 1024


def nesting_problem(payload: bytes, max_depth: int) -> tuple[str, str] | None:
    """The dead-letter kind and reason why ``payload`` must not reach the recursive JSON parser (nested
    deeper than ``max_depth``, or brackets that do not balance), or None.

    Runs before parsing and only in C-level bytes operations, never a Python loop per byte: the payload
    is cut down to its bracket skeleton, whose opener count settles the usual small message; otherwise
    each pass removes exactly one level of innermost pairs, so the cost is at most ``max_depth`` scans of
    a skeleton no longer than the payload, itself capped by ``max_payload_bytes`` (a 1,000-reading
    backlog: about 0.09 ms beside 0.3 ms to decode it).
    """
    # Fewer openers than the limit cannot nest deeper: the usual message ends here. Counted on the
    # payload itself when it is small (no copy), on its skeleton when it is large (fewer bytes to scan).
    if len(payload) <= _COUNT_IN_PLACE and payload.count(b"[") + payload.count(b"{") <= max_depth:
        return None
    if b"\\" in payload:
        payload = _ESCAPE.sub(b"", payload)  # an escaped quote must not end a string
    skeleton = payload.translate(None, _NOT_STRUCTURE)
    if skeleton.count(b"[") + skeleton.count(b"{") <= max_depth:
        return None
    # Two adjacent quotes are an empty string or the end and start of two strings with nothing
    # structural between them: dropping them keeps what is outside strings as it is, in C.
    skeleton = skeleton.replace(b'""', b"")
    if b'"' in skeleton:  # strings that contain brackets, rare: the exact (slower) way
        skeleton = _STRING.sub(b"", skeleton)
    # More openers in a row than allowed is too deep (or unbalanced) at once: the naive attack, a
    # payload that is one deep nest, costs one scan instead of max_depth passes.
    too_many_open = re.compile(rb"[\[{]{%d}" % (max_depth + 1))
    for _ in range(max_depth):
        if not skeleton:
            return None
        if too_many_open.search(skeleton) is not None:
            break
        # Marking before removing keeps a pass to one level: "[{}]" must not vanish in one pass.
        marked = skeleton.replace(b"[]", b"\x00").replace(b"{}", b"\x00")
        if len(marked) == len(skeleton):
            break
        skeleton = marked.replace(b"\x00", b"")
    if not skeleton:
        return None
    if b"[]" in skeleton or b"{}" in skeleton:
        return "too_deep", f"JSON nested deeper than {max_depth} levels"
    return "malformed", "JSON brackets do not balance"


def decode_message(
    topic: str,
    payload: bytes,
    received_at: datetime,
    *,
    retained: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> Decoded | DeadLetter:
    """Decode one MQTT message; ``received_at`` must be timezone-aware (the bridge passes UTC now)."""
    parsed = topics.parse_topic(topic)
    topic_id = parsed.logger_id if parsed is not None else None
    try:
        if parsed is None:
            raise _Reject("bad_topic", f"not a Celltrail logger topic: {topic!r}")
        if not topics.is_valid_logger_id(parsed.logger_id):
            raise _Reject(
                "bad_topic", f"logger id {parsed.logger_id!r} in the topic is not LGR-<4..12 A-Z0-9>"
            )
        if len(payload) > limits.max_payload_bytes:
            raise _Reject("too_large", f"payload of {len(payload)} bytes exceeds {limits.max_payload_bytes}")
        if parsed.kind is not topics.Kind.TELEMETRY_BIN:
            problem = nesting_problem(payload, limits.max_depth)
            if problem is not None:
                raise _Reject(*problem)
        if parsed.kind is topics.Kind.STATUS:
            return Decoded([], _status(parsed.logger_id, payload, received_at, retained))
        if parsed.kind is topics.Kind.TELEMETRY_BIN:
            readings = _binary_readings(parsed.logger_id, payload, received_at)
        else:
            readings = _json_readings(parsed.logger_id, payload, received_at, limits)
        _check_readings(readings, received_at, limits)
        return Decoded(readings, None)
    except _Reject as rejected:
        kind, reason = rejected.kind, rejected.reason
    except Exception as exc:
        # Never raised on input: an exception that escaped the rules would leave the message
        # unacknowledged, redelivered on every reconnection and holding a slot of the in-flight window
        # that every logger shares. It is kept, with the payload, for the review instead.
        kind, reason = "undecodable", f"decoder failed: {type(exc).__name__}: {exc}"[:500]
    return DeadLetter(
        topic=topic,
        payload=bytes(payload),
        kind=kind,
        reason=reason,
        received_at=received_at,
        logger_id=topic_id if topic_id is not None and topics.is_valid_logger_id(topic_id) else None,
    )


def _json_readings(
    logger_id: str, payload: bytes, received_at: datetime, limits: Limits
) -> list[IngestReading]:
    try:
        message = _telemetry_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise _Reject("malformed", f"invalid telemetry JSON: {exc}") from None
    if message.logger_id != logger_id:
        raise _Reject(
            "logger_mismatch", f"payload logger_id {message.logger_id!r} differs from topic {logger_id!r}"
        )
    if not message.readings:
        raise _Reject("malformed", "telemetry without readings")
    if len(message.readings) > limits.max_readings:
        raise _Reject(
            "too_large", f"{len(message.readings)} readings exceed {limits.max_readings} per message"
        )
    return [
        IngestReading(
            logger_id=logger_id,
            ts=r.ts.astimezone(UTC),
            temp_c=r.temp_c,
            battery_pct=message.battery_pct,
            lid_open=message.lid_open,
            received_at=received_at,
        )
        for r in message.readings
    ]


def _binary_readings(logger_id: str, payload: bytes, received_at: datetime) -> list[IngestReading]:
    try:
        decoded = frame.decode(payload)
    except frame.FrameError as exc:
        raise _Reject(exc.kind, exc.reason) from None
    if decoded.logger_id != logger_id:
        raise _Reject(
            "logger_mismatch", f"frame logger id {decoded.logger_id!r} differs from topic {logger_id!r}"
        )
    base = datetime.fromtimestamp(decoded.base_ts, UTC)
    step = timedelta(seconds=decoded.interval_s)
    return [
        IngestReading(
            logger_id=logger_id,
            ts=base + i * step,
            temp_c=centi / 100.0,
            battery_pct=decoded.battery_pct,
            lid_open=decoded.lid_open,
            seq=(decoded.seq + i) & 0xFFFFFFFF,
            low_battery=decoded.low_battery,
            received_at=received_at,
        )
        for i, centi in enumerate(decoded.temps_centi)
    ]


def _check_readings(readings: list[IngestReading], received_at: datetime, limits: Limits) -> None:
    latest = received_at + timedelta(seconds=limits.max_future_s)
    for index, reading in enumerate(readings):
        temp = reading.temp_c
        if not (math.isfinite(temp) and limits.min_temp_c <= temp <= limits.max_temp_c):
            raise _Reject(
                "implausible",
                f"reading {index}: {temp} °C outside {limits.min_temp_c}..{limits.max_temp_c} °C",
            )
        if reading.ts > latest:
            raise _Reject(
                "future_ts",
                f"reading {index}: {reading.ts.isoformat()} is more than {limits.max_future_s:g} s "
                f"after receipt at {received_at.isoformat()}",
            )
        if reading.ts < limits.min_ts:
            raise _Reject(
                "implausible",
                f"reading {index}: timestamp {reading.ts.isoformat()} before {limits.min_ts.date()}",
            )


def _status(logger_id: str, payload: bytes, received_at: datetime, retained: bool) -> LoggerStatus:
    try:
        message = _status_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise _Reject("malformed", f"invalid status JSON: {exc}") from None
    if message.logger_id is not None and message.logger_id != logger_id:
        raise _Reject(
            "logger_mismatch", f"payload logger_id {message.logger_id!r} differs from topic {logger_id!r}"
        )
    return LoggerStatus(
        logger_id=logger_id,
        online=message.online,
        ts=message.ts.astimezone(UTC) if message.ts is not None else received_at,
        received_at=received_at,
        retained=retained,
        battery_pct=message.battery_pct,
        firmware=message.firmware,
    )
