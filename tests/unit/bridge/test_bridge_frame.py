"""The binary frame: CRC variant, round trip, and every way a frame can be refused."""

from __future__ import annotations

import binascii
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge import frame


def test_crc16_ccitt_false_check_value():
    assert frame.crc16_ccitt_false(b"123456789") == 0x29B1 == frame.CRC_CHECK_VALUE


@given(st.binary(max_size=300))
def test_crc_matches_an_independent_implementation(data):
    # binascii.crc_hqx is the same polynomial, unreflected; seeded with 0xFFFF it is CCITT-FALSE.
    assert frame.crc16_ccitt_false(data) == binascii.crc_hqx(data, 0xFFFF)


logger_ids = st.from_regex(r"LGR-[A-Z0-9]{4,12}", fullmatch=True)
temps = st.integers(min_value=-27315, max_value=32767)


@st.composite
def frames(draw: st.DrawFn) -> frame.Frame:
    readings = draw(st.lists(temps, min_size=1, max_size=200))
    return frame.Frame(
        logger_id=draw(logger_ids),
        seq=draw(st.integers(0, 2**32 - 1)),
        base_ts=draw(st.integers(0, 2**32 - 1)),
        interval_s=draw(st.integers(1 if len(readings) > 1 else 0, 65535)),
        temps_centi=tuple(readings),
        battery_pct=draw(st.none() | st.integers(0, 100)),
        lid_open=draw(st.booleans()),
        low_battery=draw(st.booleans()),
    )


@given(frames())
def test_round_trip(original):
    assert frame.decode(frame.encode(original)) == original


@given(frames(), st.data())
def test_any_single_bit_flip_is_caught(original, data):
    encoded = bytearray(frame.encode(original))
    position = data.draw(st.integers(0, len(encoded) * 8 - 1))
    encoded[position // 8] ^= 1 << (position % 8)
    with pytest.raises(frame.FrameError):
        frame.decode(bytes(encoded))


def test_single_reading_is_small():
    one = frame.Frame(logger_id="LGR-0001", seq=1, base_ts=1_772_366_280, interval_s=0, temps_centi=(512,))
    assert len(frame.encode(one)) == 28


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack(">H", frame.crc16_ccitt_false(body))


def _valid() -> bytes:
    return frame.encode(
        frame.Frame(
            logger_id="LGR-0001", seq=5, base_ts=1_772_366_280, interval_s=60, temps_centi=(487, 491, 502)
        )
    )


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda b: b[:10], "too short"),
        (lambda b: _with_crc(b"\x02" + b[1:-2]), "unsupported frame version 2"),
        (lambda b: _with_crc(b[:3] + b"\x00" + b[4:-2]), "logger id length 0"),
        (lambda b: _with_crc(b[:2] + b"\x65" + b[3:-2]), "battery 101%"),
        (lambda b: _with_crc(b[:-3]), "truncated"),
        (lambda b: _with_crc(b[:-2] + b"\x00"), "unexpected bytes"),
        (lambda b: _with_crc(b[:22] + b"\x00\x00" + b[24:-2]), "no reading"),
        (lambda b: _with_crc(b[:20] + b"\x00\x00" + b[22:-2]), "interval 0 with several readings"),
        (lambda b: _with_crc(b[:4] + b"LGR-\xff001" + b[12:-2]), "not ASCII"),
        (lambda b: _with_crc(b[:26] + b"\xff\xff\xff\xff\xff\x01"), "varint too long"),
    ],
)
def test_malformed_frames(mangle, reason):
    with pytest.raises(frame.FrameError) as caught:
        frame.decode(mangle(_valid()))
    assert caught.value.kind == "malformed"
    assert reason in caught.value.reason


def test_wrong_crc_is_its_own_kind():
    data = bytearray(_valid())
    data[-1] ^= 0x01
    with pytest.raises(frame.FrameError) as caught:
        frame.decode(bytes(data))
    assert caught.value.kind == "crc"


@pytest.mark.parametrize(
    "bad",
    [
        frame.Frame(logger_id="", seq=0, base_ts=0, interval_s=0, temps_centi=(1,)),
        frame.Frame(logger_id="LGR-0001", seq=0, base_ts=0, interval_s=0, temps_centi=()),
        frame.Frame(logger_id="LGR-0001", seq=0, base_ts=0, interval_s=0, temps_centi=(1, 2)),
        frame.Frame(logger_id="LGR-0001", seq=0, base_ts=-1, interval_s=0, temps_centi=(1,)),
        frame.Frame(logger_id="LGR-0001", seq=0, base_ts=0, interval_s=0, temps_centi=(40_000,)),
        frame.Frame(logger_id="LGR-0001", seq=0, base_ts=0, interval_s=0, temps_centi=(1,), battery_pct=101),
    ],
)
def test_encoder_refuses_what_does_not_fit(bad):
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the field
        frame.encode(bad)


def test_the_worked_example_of_frame_md():
    example = frame.Frame(
        logger_id="LGR-0001",
        seq=5,
        base_ts=1_772_366_280,
        interval_s=60,
        temps_centi=(487, 491, 502),
        battery_pct=87,
    )
    documented = "01 00 57 08 4c 47 52 2d 30 30 30 31 00 00 00 05 69 a4 29 c8 00 3c 00 03 01 e7 08 16 8f 5d"
    assert frame.encode(example).hex(" ") == documented
