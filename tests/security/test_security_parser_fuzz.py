"""Hypothesis fuzzing of every parser that reads outside input. The property is the same for each: a
value or the project's documented error, never an unexpected exception type.

- identifiers and barcode contents: parse_identifier → Identifier or IdentifierError; the scanner's
  interpret (with biip as second opinion on GS1) → Parsed, Rejected or Foreign;
- logger telemetry: frame.decode → Frame or FrameError; the bridge's decode_message → Decoded or a
  DeadLetter (never raises), and a payload naming another logger than its topic is dead-lettered;
- EPCIS: validate_document → a list of problems; event hash ids → a string;
- CSV export cells and ZPL label text: whatever the text, it stays one cell / one field."""

from __future__ import annotations

import csv
import io
import json
import string
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backend.epcis.eventid import event_hash_id
from backend.epcis.validate import events_of, validate_document
from backend.reports import csv_export
from celltrail_shared.identifiers import IdentifierError, parse_identifier
from firmware_bridge import frame, payloads, topics
from firmware_bridge.payloads import DeadLetter, Decoded
from labels.zpl import HEX_ESCAPE, escape_text
from scanner.decode import Detection
from scanner.parse import Foreign, Parsed, Rejected, interpret

E = TypeVar("E", bound=Exception)


def documented_error(call: Callable[[], object], documented: type[E]) -> E | None:
    """The documented error `call` raised, or None when it answered a value; anything else propagates
    and fails the property."""
    try:
        call()
    except documented as error:
        return error
    return None


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RECEIVED = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

# Text that looks like what scanners and people send: the alphabets of every format, the GS1 group
# separator, symbology identifiers, and any other character now and then.
SCAN_ALPHABET = string.ascii_uppercase + string.digits + "&/=<>%'*()-:]\x1d dCQe" + "ÄΩ\x00\n"
scan_texts = st.one_of(
    st.text(alphabet=SCAN_ALPHABET, max_size=60),
    st.text(max_size=60),
    st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(
            ["&/", "=", "CT1:COI:", "CT1:UNIT:", "CT1:DIN:", "(00)", "]d2", "]C1", "SHP-", "LGR-"]
        ),
        st.text(alphabet=SCAN_ALPHABET, max_size=40),
    ),
)


@FUZZ
@given(scan_texts)
@example("(00)")
@example("]d2")
@example("CT1:SSCC:")
@example("=" + "A" * 200)
def test_identifier_parsing_answers_an_identifier_or_an_identifier_error(text: str) -> None:
    error = documented_error(lambda: parse_identifier(text), IdentifierError)
    assert error is None or error.reason  # the documented error says what is wrong


@FUZZ
@given(scan_texts, st.booleans())
def test_the_scanner_interprets_any_symbol_text(text: str, gs1: bool) -> None:
    detection = Detection(text=text, symbology="DataMatrix", polygon=(), decoder="fuzz", gs1=gs1)
    assert isinstance(interpret(detection), Parsed | Rejected | Foreign)


logger_ids = st.from_regex(topics.LOGGER_ID_RE, fullmatch=True)


@FUZZ
@given(st.binary(max_size=300))
def test_binary_frames_decode_or_raise_frame_error(data: bytes) -> None:
    error = documented_error(lambda: frame.decode(data), frame.FrameError)
    assert error is None or error.kind in ("malformed", "crc")


@FUZZ
@given(st.binary(min_size=1, max_size=300))
def test_frames_with_a_valid_crc_decode_or_raise_frame_error(body: bytes) -> None:
    # Random bytes almost never pass the CRC; fix it so the fuzzing reaches the field parsing.
    data = bytes([frame.VERSION]) + body
    data += frame.crc16_ccitt_false(data).to_bytes(2, "big")
    error = documented_error(lambda: frame.decode(data), frame.FrameError)
    assert error is None or error.kind == "malformed"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
timestamps = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.text(max_size=30),
    st.integers(),
)
readings = st.fixed_dictionaries(
    {"ts": timestamps, "temp_c": st.one_of(st.floats(), st.integers(), json_values)}
)
telemetry = st.fixed_dictionaries(
    {"logger_id": st.one_of(logger_ids, st.text(max_size=20)), "readings": st.lists(readings, max_size=5)},
    optional={"battery_pct": json_values, "lid_open": json_values, "extra": json_values},
)


@FUZZ
@given(
    logger_ids,
    st.sampled_from(["telemetry", "telemetry/bin", "status", "other"]),
    st.one_of(
        st.binary(max_size=200), telemetry.map(msgspec.json.encode), json_values.map(msgspec.json.encode)
    ),
)
def test_the_bridge_decodes_any_message_into_readings_or_a_dead_letter(
    logger_id: str, suffix: str, payload: bytes
) -> None:
    topic = f"celltrail/v1/loggers/{logger_id}/{suffix}"
    result = payloads.decode_message(topic, payload, RECEIVED)
    assert isinstance(result, Decoded | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.kind
        assert result.reason
    else:
        assert all(r.logger_id == logger_id for r in result.readings)


def _nest(opener: str, depth: int, leaf: str) -> bytes:
    closers = {"[": "]", '{"a":': "}", "[1,": "]", '{"k":[],"a":': "}"}
    return (opener * depth + leaf + closers[opener] * depth).encode()


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


deep_payloads = st.one_of(
    # Issue 20, finding 10: nests far past the parser's recursion limit, balanced or cut off, alone or
    # as an unknown field of an otherwise valid message, with brackets inside strings to mislead.
    st.builds(
        _nest,
        st.sampled_from(["[", '{"a":', "[1,", '{"k":[],"a":']),
        st.integers(min_value=0, max_value=3000),
        st.sampled_from(["1", '"]]]"', '"\\"', "null", "[]"]),
    ),
    st.builds(
        lambda depth, cut: (b"[" * depth + b"]" * depth)[: max(cut, 0)],
        st.integers(min_value=1, max_value=3000),
        st.integers(min_value=0, max_value=6000),
    ),
    st.builds(
        lambda nest: (
            b'{"logger_id":"LGR-ABCD","readings":[{"ts":"2026-11-22T09:59:00Z","temp_c":4.0}],'
            b'"extra":' + nest + b"}"
        ),
        st.builds(lambda depth: b"[" * depth + b"]" * depth, st.integers(min_value=0, max_value=2000)),
    ),
    st.binary(max_size=2048).map(lambda noise: b"[" * 1500 + noise),
)


@FUZZ
@given(st.sampled_from(["telemetry", "status"]), st.one_of(deep_payloads, st.binary(max_size=4096)))
@example("telemetry", b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}")
@example("status", b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}")
@example("telemetry", b'{"logger_id":"LGR-ABCD","readings":[{"ts":"2026-11-22T09:59:00Z","temp_c":1e400}]}')
@example(
    "telemetry",
    b'{"logger_id":"LGR-ABCD","readings":[{"ts":"2026-11-22T09:59:00Z","temp_c":' + b"9" * 5000 + b"}]}",
)
@example("telemetry", b"\xff\xfe{\x00}")
def test_no_payload_makes_the_bridge_decoder_raise(suffix: str, payload: bytes) -> None:
    """Issue 20, finding 10: nesting, size, encoding, recursion and numbers all end as a reading batch
    or a dead letter; deeper than the limit is always a dead letter, decided before parsing."""
    result = payloads.decode_message(f"celltrail/v1/loggers/LGR-ABCD/{suffix}", payload, RECEIVED)
    assert isinstance(result, Decoded | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.kind
        assert result.reason
        assert result.payload == payload  # kept whole for the review
        return
    assert _depth(json.loads(payload)) <= payloads.DEFAULT_LIMITS.max_depth


@FUZZ
@given(json_values, st.integers(min_value=0, max_value=40))
def test_the_nesting_check_agrees_with_the_real_depth_of_valid_json(value: Any, wrap: int) -> None:
    """The cheap pre-parse check never refuses valid JSON within the limit and always refuses deeper,
    whatever brackets the strings hold."""
    for _ in range(wrap):
        value = [value, ']}[{"\\']
    payload = json.dumps(value).encode()
    limit = payloads.DEFAULT_LIMITS.max_depth
    problem = payloads.nesting_problem(payload, limit)
    if _depth(value) <= limit:
        assert problem is None
    else:
        assert problem is not None
        assert problem[0] == "too_deep"


@FUZZ
@given(st.text(max_size=80), st.binary(max_size=50))
def test_the_bridge_dead_letters_any_foreign_topic(topic: str, payload: bytes) -> None:
    result = payloads.decode_message(topic, payload, RECEIVED)
    assert isinstance(result, Decoded | DeadLetter)


@FUZZ
@given(logger_ids, logger_ids, st.floats(min_value=-80, max_value=40))
def test_a_payload_naming_another_logger_than_its_topic_is_dead_lettered(
    topic_id: str, payload_id: str, temp: float
) -> None:
    reading = {"ts": RECEIVED.isoformat(), "temp_c": temp}
    payload = msgspec.json.encode({"logger_id": payload_id, "readings": [reading]})
    result = payloads.decode_message(topics.telemetry_topic(topic_id), payload, RECEIVED)
    if topic_id == payload_id:
        assert isinstance(result, Decoded)
    else:
        assert isinstance(result, DeadLetter)
        assert result.kind == "logger_mismatch"
        assert result.logger_id == topic_id


epcis_events = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["ObjectEvent", "AggregationEvent", "TransformationEvent", "Bogus"]),
        "eventTime": timestamps,
        "eventTimeZoneOffset": st.sampled_from(["+00:00", "+01:00", "nonsense"]),
        "action": st.sampled_from(["ADD", "OBSERVE", "DELETE", "x"]),
        "bizStep": st.sampled_from(["shipping", "receiving", "cbv:BizStep-shipping", "urn:x"]),
        "epcList": st.lists(st.one_of(st.text(max_size=40), json_values), max_size=3),
        "readPoint": st.one_of(st.fixed_dictionaries({"id": st.text(max_size=40)}), json_values),
        "eventID": json_values,
        "quantityList": json_values,
        "sensorElementList": json_values,
    },
)
epcis_documents = st.fixed_dictionaries(
    {"type": st.sampled_from(["EPCISDocument", "EPCISQueryDocument", "x"])},
    optional={
        "@context": st.one_of(
            st.just(["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"]), json_values
        ),
        "schemaVersion": st.sampled_from(["2.0", "1.2", ""]),
        "creationDate": timestamps,
        "epcisBody": st.one_of(
            st.fixed_dictionaries({"eventList": st.lists(epcis_events, max_size=3)}), json_values
        ),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(epcis_documents, json_values))
def test_epcis_validation_answers_a_list_of_problems_for_any_json(document: Any) -> None:
    problems = validate_document(document)
    assert isinstance(problems, list)
    assert all(p.path is not None and p.message for p in problems)


SPECS = Path(__file__).resolve().parents[1] / "fixtures" / "epcis"
EXAMPLES = sorted((SPECS / "examples").glob("*.jsonld"))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


@st.composite
def mutated_examples(draw: st.DrawFn) -> dict[str, Any]:
    """GS1's own example documents with a few values replaced or removed: mostly near-valid input, so
    the fuzzing reaches what runs after validation."""
    document = json.loads(draw(st.sampled_from(EXAMPLES)).read_text())
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(document)[1:]))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return document


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_examples())
def test_epcis_validation_and_hash_ids_for_near_valid_documents(document: dict[str, Any]) -> None:
    # Capture computes an event's hash id only after the document validated (backend/epcis/capture.py),
    # so that is the hash's input domain: any event of a conformant document.
    problems = validate_document(document)
    assert all(p.path is not None and p.message for p in problems)
    if problems:
        return
    for event in events_of(document):
        assert event_hash_id(event, document.get("@context")).startswith("ni:///sha-256;")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_unmutated_examples_validate_and_hash(path: Path) -> None:
    # The mutation above starts from these (zero mutations is one of its draws): they must conform,
    # or the hash-id half of that property would test nothing.
    document = json.loads(path.read_text())
    assert validate_document(document) == []
    assert all(event_hash_id(e, document.get("@context")) for e in events_of(document))


@FUZZ
@given(st.lists(st.text(max_size=30), min_size=1, max_size=5))
def test_csv_text_cells_stay_one_cell_and_never_start_a_formula(cells: list[str]) -> None:
    written = csv_export._csv(["c"] * len(cells), [[csv_export._text(c) for c in cells]])
    rows = list(csv.reader(io.StringIO(written, newline="")))
    assert len(rows) == 2
    assert len(rows[1]) == len(cells)
    for cell in rows[1]:
        # Spreadsheets run a cell starting with one of these as a formula (CSV injection).
        assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r")


@FUZZ
@given(st.text(max_size=60))
def test_label_text_cannot_inject_zpl_commands(text: str) -> None:
    escaped = escape_text(text)
    assert "^" not in escaped
    assert "~" not in escaped
    assert all(0x20 <= ord(c) <= 0x7E for c in escaped)
    # Every escape is the escape character and two hex digits.
    parts = escaped.split(HEX_ESCAPE)
    assert all(len(p) >= 2 and all(c in string.hexdigits for c in p[:2]) for p in parts[1:])
