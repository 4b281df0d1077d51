"""Pure decoders on captured-style payloads (fixtures/): good ones, and each bad kind with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_bridge import payloads, topics
from firmware_bridge.ingest_contract import DeadLetter

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    return bytes.fromhex(data.decode()) if name.endswith(".hex") else data


def decode_ok(topic: str, payload: bytes, received_at: datetime, **kw: object) -> payloads.Decoded:
    result = payloads.decode_message(topic, payload, received_at, **kw)  # type: ignore[arg-type]
    assert isinstance(result, payloads.Decoded), result
    return result


def test_single_json_reading(received_at):
    result = decode_ok(topics.telemetry_topic("LGR-0001"), fixture("json_single.json"), received_at)
    (reading,) = result.readings
    assert reading.logger_id == "LGR-0001"
    assert reading.ts == datetime(2026, 3, 1, 11, 58, tzinfo=UTC)
    assert reading.temp_c == 4.87
    assert (reading.battery_pct, reading.lid_open, reading.seq) == (87, False, None)
    assert reading.received_at == received_at
    assert result.status is None


def test_backlog_out_of_order_with_offsets_and_unknown_fields(received_at):
    result = decode_ok(topics.telemetry_topic("LGR-00A7"), fixture("json_backlog.json"), received_at)
    stamps = [r.ts for r in result.readings]
    # Order as sent (the backend does not rely on it); offsets normalised to UTC.
    assert stamps == [
        datetime(2026, 3, 1, 10, 20, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 10, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 30, 0, 250_000, tzinfo=UTC),
    ]
    assert all(ts.utcoffset() == timedelta(0) for ts in stamps)
    assert [r.temp_c for r in result.readings] == [5.12, 4.98, 5.05, 9.0]
    assert {(r.battery_pct, r.lid_open) for r in result.readings} == {(41, True)}


def test_binary_backlog_frame(received_at):
    result = decode_ok(topics.telemetry_bin_topic("LGR-0001"), fixture("frame_backlog.hex"), received_at)
    assert [(r.ts.isoformat(), r.temp_c, r.seq) for r in result.readings] == [
        ("2026-03-01T11:58:00+00:00", 4.87, 5),
        ("2026-03-01T11:59:00+00:00", 4.91, 6),
        ("2026-03-01T12:00:00+00:00", 5.02, 7),
    ]
    assert {(r.battery_pct, r.lid_open, r.low_battery) for r in result.readings} == {(87, False, False)}


def test_binary_single_frame_with_flags(received_at):
    result = decode_ok(
        topics.telemetry_bin_topic("LGR-0042"), fixture("frame_single_lid_open.hex"), received_at
    )
    (reading,) = result.readings
    assert (reading.temp_c, reading.seq, reading.battery_pct) == (-190.12, 1234, None)
    assert (reading.lid_open, reading.low_battery) == (True, True)


def test_status_birth_and_last_will(received_at):
    topic = topics.status_topic("LGR-0001")
    birth = decode_ok(topic, fixture("status_online.json"), received_at, retained=True).status
    assert birth is not None
    assert (birth.online, birth.battery_pct, birth.firmware, birth.retained) == (True, 87, "2.1.4", True)
    assert birth.ts == datetime(2026, 3, 1, 11, 59, 30, tzinfo=UTC)
    will = decode_ok(topic, fixture("status_will.json"), received_at).status
    assert will is not None
    assert (will.online, will.ts, will.retained) == (False, received_at, False)


BAD = [
    ("telemetry", "bad_truncated.json", "malformed", "truncated"),
    ("telemetry", "bad_minus300.json", "implausible", "-300.0 °C"),
    ("telemetry", "bad_too_hot.json", "implausible", "101.5 °C"),
    ("telemetry", "bad_future.json", "future_ts", "more than 600 s"),
    ("telemetry", "bad_other_logger.json", "logger_mismatch", "LGR-0002"),
    ("telemetry", "bad_naive_ts.json", "malformed", "timezone"),
    ("telemetry", "bad_no_readings.json", "malformed", "without readings"),
    ("telemetry", "bad_string_temp.json", "malformed", "Expected `float`"),
    ("telemetry", "bad_clock_reset.json", "implausible", "before 2000-01-01"),
    ("status", "bad_status.json", "malformed", "Expected `bool`"),
    ("bin", "bad_frame_crc.hex", "crc", "CRC mismatch"),
    # CRC first: JSON sent to the binary topic is reported as a frame that fails its check.
    ("bin", "json_single.json", "crc", "CRC mismatch"),
]


@pytest.mark.parametrize(("where", "name", "kind", "reason"), BAD, ids=[b[1] for b in BAD])
def test_bad_payloads_become_dead_letters(where, name, kind, reason, received_at):
    topic = {
        "telemetry": topics.telemetry_topic,
        "status": topics.status_topic,
        "bin": topics.telemetry_bin_topic,
    }[where]("LGR-0001")
    payload = fixture(name)
    result = payloads.decode_message(topic, payload, received_at)
    assert isinstance(result, DeadLetter)
    assert result.kind == kind
    assert reason in result.reason
    assert (result.topic, result.payload, result.logger_id, result.received_at) == (
        topic,
        payload,
        "LGR-0001",
        received_at,
    )


def test_a_reading_exactly_at_the_future_limit_is_accepted(received_at):
    payload = fixture("bad_future.json").replace(b"12:10:01", b"12:10:00")
    decode_ok(topics.telemetry_topic("LGR-0001"), payload, received_at)


def test_future_limit_is_configurable(received_at):
    limits = payloads.Limits(max_future_s=3600)
    decode_ok(topics.telemetry_topic("LGR-0001"), fixture("bad_future.json"), received_at, limits=limits)


@pytest.mark.parametrize(
    "topic",
    [
        "celltrail/v1/loggers/lgr-0001/telemetry",
        "celltrail/v1/loggers/LGR-01/telemetry",
        "celltrail/v1/loggers/LGR-0001/other",
        "celltrail/v2/loggers/LGR-0001/telemetry",
        "celltrail/v1/loggers//telemetry",
    ],
)
def test_bad_topics(topic, received_at):
    result = payloads.decode_message(topic, fixture("json_single.json"), received_at)
    assert isinstance(result, DeadLetter)
    assert result.kind == "bad_topic"
    assert result.logger_id is None


def test_payload_size_limits(received_at):
    limits = payloads.Limits(max_payload_bytes=50)
    result = payloads.decode_message(
        topics.telemetry_topic("LGR-0001"), fixture("json_single.json"), received_at, limits=limits
    )
    assert isinstance(result, DeadLetter)
    assert result.kind == "too_large"
    limits = payloads.Limits(max_readings=3)
    result = payloads.decode_message(
        topics.telemetry_topic("LGR-00A7"), fixture("json_backlog.json"), received_at, limits=limits
    )
    assert isinstance(result, DeadLetter)
    assert result.kind == "too_large"


def test_out_of_range_number_is_a_dead_letter(received_at):
    payload = b'{"logger_id":"LGR-0001","readings":[{"ts":"2026-03-01T11:58:00Z","temp_c":1e999}]}'
    result = payloads.decode_message(topics.telemetry_topic("LGR-0001"), payload, received_at)
    assert isinstance(result, DeadLetter)


def test_topic_parsing_and_filters():
    assert topics.parse_topic("celltrail/v1/loggers/LGR-0001/telemetry/bin") == (
        topics.Kind.TELEMETRY_BIN,
        "LGR-0001",
    )
    assert topics.parse_topic("celltrail/v1/loggers/LGR-0001/status") == (topics.Kind.STATUS, "LGR-0001")
    assert topics.parse_topic("celltrail/v1/loggers/a/b/telemetry") is None
    assert topics.subscription_filters("east") == [
        "$share/east/celltrail/v1/loggers/+/telemetry",
        "$share/east/celltrail/v1/loggers/+/telemetry/bin",
        "$share/east/celltrail/v1/loggers/+/status",
    ]
    assert topics.is_valid_logger_id("LGR-ABCDEF123456")
    assert not topics.is_valid_logger_id("LGR-ABCDEF1234567")


# Issue 20, finding 10: a 2 KB payload nested 1,000 levels deep raised RecursionError in the bridge.
DEEP = b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}"


@pytest.mark.parametrize("suffix", ["telemetry", "status"])
def test_finding_10_deep_nesting_is_a_dead_letter_decided_before_parsing(suffix, received_at, monkeypatch):
    def parser_must_not_run(_: bytes) -> None:
        raise AssertionError("the parser saw a payload deeper than the limit")

    monkeypatch.setattr(
        payloads, "_telemetry_decoder", type("D", (), {"decode": staticmethod(parser_must_not_run)})
    )
    monkeypatch.setattr(
        payloads, "_status_decoder", type("D", (), {"decode": staticmethod(parser_must_not_run)})
    )
    result = payloads.decode_message(f"celltrail/v1/loggers/LGR-0001/{suffix}", DEEP, received_at)
    assert isinstance(result, DeadLetter)
    assert (result.kind, result.logger_id, result.payload) == ("too_deep", "LGR-0001", DEEP)
    assert "32 levels" in result.reason


def test_finding_10_nesting_within_the_limit_and_brackets_in_strings_decode(received_at):
    extra = b"[" * 30 + b"]" * 30
    payload = (
        b'{"logger_id":"LGR-0001","note":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"{{{{","extra":'
        + extra
        + b',"readings":[{"ts":"2026-03-01T11:58:00Z","temp_c":4.5}]}'
    )
    assert len(decode_ok(topics.telemetry_topic("LGR-0001"), payload, received_at).readings) == 1


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"[" * 100_000, "malformed"),  # never closed: the parser would recurse on the way in
        (b'{"a":' * 40 + b"1" + b"}" * 40, "too_deep"),
        (b"[" * 33 + b"]" * 33, "too_deep"),
        (b"[" * 32 + b"]" * 32, "malformed"),  # within the limit: the parser's own answer
    ],
)
def test_finding_10_the_limit_is_exact(payload, kind, received_at):
    result = payloads.decode_message(topics.telemetry_topic("LGR-0001"), payload, received_at)
    assert isinstance(result, DeadLetter)
    assert result.kind == kind


def test_finding_10_an_unforeseen_decoder_failure_is_still_a_dead_letter(received_at, monkeypatch):
    def broken(_: bytes) -> None:
        raise RecursionError("maximum recursion depth exceeded while deserializing an object")

    monkeypatch.setattr(payloads, "_telemetry_decoder", type("D", (), {"decode": staticmethod(broken)}))
    result = payloads.decode_message(topics.telemetry_topic("LGR-0001"), b"{}", received_at)
    assert isinstance(result, DeadLetter)
    assert result.kind == "undecodable"
    assert "RecursionError" in result.reason
