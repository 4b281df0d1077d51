"""The compact binary telemetry frame for constrained firmware: encoder and pure decoder.

Published on ``celltrail/v1/loggers/{logger_id}/telemetry/bin`` (the topic, not a sniffed first byte,
says which format a payload is, so a JSON payload can never be mistaken for a frame). All integers are
big-endian. Full description with a worked example: FRAME.md beside this module.

====== ====== ==================================================================================
offset  size   field
====== ====== ==================================================================================
0       1      version, 0x01
1       1      flags: bit 0 lid open, bit 1 battery low; bits 2-7 reserved, sent as 0, ignored
2       1      battery percent 0..100, 0xFF = not reported
3       1      n = length of the logger id (1..32)
4       n      logger id, ASCII, e.g. ``LGR-0001``
4+n     4      seq: the logger's sample counter of the first reading (u32); reading i has seq + i
8+n     4      base_ts: Unix seconds (UTC) of the first reading (u32)
12+n    2      interval_s: seconds between consecutive readings (u16; 0 only when count == 1)
14+n    2      count of readings (u16, >= 1)
16+n    2      first temperature, centi-degrees Celsius (i16)
18+n    var    count - 1 deltas to the previous reading, centi-degrees, zigzag LEB128 varints
end-2   2      CRC-16/CCITT-FALSE over every byte before it
====== ====== ==================================================================================

CRC-16/CCITT-FALSE: width 16, poly 0x1021, init 0xFFFF, no reflection, xorout 0x0000; the check value
over ASCII ``123456789`` is 0x29B1.
"""

from __future__ import annotations

import struct
from typing import Final

import msgspec

VERSION: Final = 1
FLAG_LID_OPEN: Final = 0x01
FLAG_LOW_BATTERY: Final = 0x02
BATTERY_UNKNOWN: Final = 0xFF
MAX_ID_LEN: Final = 32
MAX_COUNT: Final = 0xFFFF
CRC_CHECK_VALUE: Final = 0x29B1

_HEAD: Final = struct.Struct(">BBBB")
_BODY: Final = struct.Struct(">IIHHh")
_CRC: Final = struct.Struct(">H")
# A varint longer than this cannot be a centi-degree delta of a plausible reading.
_MAX_VARINT_BYTES: Final = 5


class FrameError(ValueError):
    """The bytes are not a valid frame. ``kind`` is ``malformed`` or ``crc``."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    logger_id: str
    seq: int
    base_ts: int
    interval_s: int
    temps_centi: tuple[int, ...]
    battery_pct: int | None = None
    lid_open: bool = False
    low_battery: bool = False


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE: Final = _crc_table()


def crc16_ccitt_false(data: bytes | bytearray) -> int:
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[(crc >> 8) ^ byte]
    return crc


def _zigzag(value: int) -> int:
    return value << 1 if value >= 0 else ((-value) << 1) - 1


def _unzigzag(value: int) -> int:
    return value >> 1 if not value & 1 else -((value + 1) >> 1)


def _write_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode(frame: Frame) -> bytes:
    """Encode a frame; raises ValueError when a field does not fit its slot."""
    id_bytes = frame.logger_id.encode("ascii")
    if not 1 <= len(id_bytes) <= MAX_ID_LEN:
        raise ValueError(f"logger id must be 1..{MAX_ID_LEN} ASCII bytes")
    count = len(frame.temps_centi)
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"a frame carries 1..{MAX_COUNT} readings, not {count}")
    if frame.interval_s == 0 and count > 1:
        raise ValueError("interval_s 0 would give several readings the same timestamp")
    if frame.battery_pct is not None and not 0 <= frame.battery_pct <= 100:
        raise ValueError("battery_pct must be 0..100")
    flags = (FLAG_LID_OPEN if frame.lid_open else 0) | (FLAG_LOW_BATTERY if frame.low_battery else 0)
    battery = BATTERY_UNKNOWN if frame.battery_pct is None else frame.battery_pct
    out = bytearray(_HEAD.pack(VERSION, flags, battery, len(id_bytes)))
    out += id_bytes
    # struct.error is not a ValueError; callers get one ValueError type for any field that does not fit.
    try:
        out += _BODY.pack(
            frame.seq & 0xFFFFFFFF, frame.base_ts, frame.interval_s, count, frame.temps_centi[0]
        )
    except struct.error as exc:
        raise ValueError(f"frame field out of range: {exc}") from None
    previous = frame.temps_centi[0]
    for temp in frame.temps_centi[1:]:
        _write_varint(out, _zigzag(temp - previous))
        previous = temp
    out += _CRC.pack(crc16_ccitt_false(out))
    return bytes(out)


def _header(data: bytes) -> tuple[int, int, int]:
    """Checks the frame's length, CRC and fixed header; returns (flags, battery, id length)."""
    minimum = _HEAD.size + 1 + _BODY.size + _CRC.size
    if len(data) < minimum:
        raise FrameError("malformed", f"frame too short: {len(data)} bytes, at least {minimum} needed")
    (expected,) = _CRC.unpack_from(data, len(data) - 2)
    actual = crc16_ccitt_false(data[:-2])
    if actual != expected:
        raise FrameError("crc", f"CRC mismatch: frame says 0x{expected:04X}, computed 0x{actual:04X}")
    version, flags, battery, id_len = _HEAD.unpack_from(data, 0)
    if version != VERSION:
        raise FrameError("malformed", f"unsupported frame version {version}")
    if not 1 <= id_len <= MAX_ID_LEN:
        raise FrameError("malformed", f"logger id length {id_len} outside 1..{MAX_ID_LEN}")
    if battery != BATTERY_UNKNOWN and battery > 100:
        raise FrameError("malformed", f"battery {battery}% above 100")
    if _HEAD.size + id_len + _BODY.size > len(data) - 2:
        raise FrameError("malformed", "frame truncated inside the header")
    return flags, battery, id_len


def _temperatures(data: bytes, pos: int, count: int, first: int) -> list[int]:
    """The readings after the first: zigzag varint deltas, each from the one before. One loop over the
    whole frame (not a call per reading): this runs for every reading the bridge receives."""
    end = len(data) - 2
    temps = [first]
    current = first
    for _ in range(count - 1):
        value = 0
        shift = 0
        while True:
            if pos >= end:
                raise FrameError("malformed", f"frame truncated: {count} readings announced, fewer present")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if shift >= 7 * _MAX_VARINT_BYTES:
                raise FrameError("malformed", "temperature delta varint too long")
        current += _unzigzag(value)
        temps.append(current)
    if pos != end:
        raise FrameError("malformed", f"{end - pos} unexpected bytes after the last reading")
    return temps


def decode(data: bytes) -> Frame:
    """Decode a frame or raise FrameError saying what is wrong. Pure: no clock, no I/O."""
    flags, battery, id_len = _header(data)
    body_at = _HEAD.size + id_len
    try:
        logger_id = data[_HEAD.size : body_at].decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("malformed", "logger id is not ASCII") from None
    seq, base_ts, interval_s, count, first = _BODY.unpack_from(data, body_at)
    if count == 0:
        raise FrameError("malformed", "frame carries no reading")
    if interval_s == 0 and count > 1:
        raise FrameError("malformed", "interval 0 with several readings")
    temps = _temperatures(data, body_at + _BODY.size, count, first)
    return Frame(
        logger_id=logger_id,
        seq=seq,
        base_ts=base_ts,
        interval_s=interval_s,
        temps_centi=tuple(temps),
        battery_pct=None if battery == BATTERY_UNKNOWN else battery,
        lid_open=bool(flags & FLAG_LID_OPEN),
        low_battery=bool(flags & FLAG_LOW_BATTERY),
    )
