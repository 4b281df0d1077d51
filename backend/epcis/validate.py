"""Is a document conformant EPCIS 2.0? It must validate against GS1's JSON schema (Draft 7, formats
checked) AND use only CBV 2.0 vocabulary: the schema alone accepts any URI as a business step,
disposition or source/destination type, and any string as a unit of measure.

GS1's schema ships inside the package (`backend/epcis/gs1/`, unmodified, with its origin and terms beside
it); CELLTRAIL_EPCIS_SCHEMA names another copy, read when a document is validated. It is loaded once per
path and cached."""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from backend.epcis import vocabulary
from backend.epcis.formats import is_date_time, is_uri

SCHEMA_ENV: Final = "CELLTRAIL_EPCIS_SCHEMA"
_UOM: Final = re.compile(r"[A-Z0-9]{2,3}")
_MESSAGE_LIMIT: Final = 300


class SchemaUnavailable(Exception):
    """The EPCIS JSON schema cannot be read: validation is impossible, so nothing may be accepted."""


class Problem(msgspec.Struct, frozen=True):
    path: str
    message: str


PACKAGED: Final = Path(__file__).resolve().parent / "gs1"


def default_schema_path() -> Path:
    """GS1's schema as packaged with Celltrail."""
    return PACKAGED / "EPCIS-JSON-Schema.json"


def schema_path() -> Path:
    configured = os.environ.get(SCHEMA_ENV, "").strip()
    return Path(configured) if configured else default_schema_path()


def validator() -> Any:
    """The Draft 7 validator for the configured schema; SchemaUnavailable when it cannot be read."""
    return _validator_for(str(schema_path()))


@functools.lru_cache(maxsize=4)
def _validator_for(path: str) -> Any:
    try:
        from jsonschema import Draft7Validator, FormatChecker, SchemaError  # type: ignore[import-untyped]
    except ImportError:
        raise SchemaUnavailable(
            "EPCIS validation needs the jsonschema package, which is not installed"
        ) from None
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
        Draft7Validator.check_schema(schema)
    except (OSError, ValueError, SchemaError) as exc:
        raise SchemaUnavailable(
            f"the EPCIS 2.0 JSON schema could not be read from {path} ({type(exc).__name__}); set "
            f"{SCHEMA_ENV} to the path of EPCIS-JSON-Schema.json"
        ) from None
    checker = FormatChecker(formats=())
    # Formats apply to strings only; other types are the schema's `type` keyword's business.
    checker.checks("uri")(lambda value: not isinstance(value, str) or is_uri(value))
    checker.checks("date-time")(lambda value: not isinstance(value, str) or is_date_time(value))
    return Draft7Validator(schema, format_checker=checker)


def validate_document(document: Any) -> list[Problem]:
    """Every problem found, schema and vocabulary alike; an empty list means conformant."""
    check = validator()
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

    if not isinstance(document, Mapping) or document.get("type") != "EPCISDocument":
        return [Problem("type", "a capture takes an EPCIS document: an object with type EPCISDocument")]
    vocab = list(_vocabulary_problems(document))
    covered = {p.path for p in vocab}
    found: list[Problem] = []
    for error in check.iter_errors(document):
        leaf = best_match([error])
        problem = Problem(_path(leaf.absolute_path), _short(leaf.message))
        if problem.path not in covered and problem not in found:
            found.append(problem)
    return found + vocab


def events_of(document: Mapping[str, Any]) -> list[Any]:
    body = document.get("epcisBody")
    events = body.get("eventList") if isinstance(body, Mapping) else None
    return events if isinstance(events, list) else []


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _short(message: str) -> str:
    return message if len(message) <= _MESSAGE_LIMIT else message[: _MESSAGE_LIMIT - 1] + "…"


def _term_problem(path: str, value: Any, vocab: vocabulary.Vocabulary) -> Iterator[Problem]:
    # EPCIS 2.0 lets a business step, disposition, source/destination, transaction type or error reason be
    # any absolute URI; only a bare word or a URI in CBV's own namespaces must be a CBV term.
    if isinstance(value, str) and vocab.bare(value) is None and not vocab.is_custom(value):
        yield Problem(
            path,
            f"{value!r} is not a CBV 2.0 {vocab.label}; one of your own must be an absolute URI outside "
            f"CBV's namespace (e.g. https://example.com/voc/{vocab.label.replace(' ', '_')})",
        )


def _vocabulary_problems(document: Mapping[str, Any]) -> Iterator[Problem]:
    for index, event in enumerate(events_of(document)):
        if isinstance(event, Mapping):
            yield from _event_vocabulary(f"epcisBody.eventList[{index}]", event)


def _event_vocabulary(at: str, event: Mapping[str, Any]) -> Iterator[Problem]:
    for path, value, vocab in _terms(event):
        yield from _term_problem(f"{at}.{path}", value, vocab)
    for path, report in _sensor_reports(event):
        yield from _report_units(f"{at}.{path}", report)


# The fields holding one CBV term, and the lists of objects whose `type` is one, in the order they are
# reported.
_TERM_FIELDS: Final = (("bizStep", vocabulary.BIZ_STEP), ("disposition", vocabulary.DISPOSITION))
_TYPED_LISTS: Final = (
    ("sourceList", vocabulary.SOURCE_DESTINATION_TYPE),
    ("destinationList", vocabulary.SOURCE_DESTINATION_TYPE),
    ("bizTransactionList", vocabulary.BIZ_TRANSACTION_TYPE),
)


def _terms(event: Mapping[str, Any]) -> Iterator[tuple[str, Any, vocabulary.Vocabulary]]:
    """Every CBV term the event carries: where it is in the event, its value, its vocabulary."""
    for name, vocab in _TERM_FIELDS:
        if name in event:
            yield name, event[name], vocab
    persistent = _mapping(event.get("persistentDisposition"))
    for part in ("set", "unset"):
        for i, value in enumerate(_list(persistent.get(part))):
            yield f"persistentDisposition.{part}[{i}]", value, vocabulary.DISPOSITION
    for name, vocab in _TYPED_LISTS:
        for i, entry in _mappings(event.get(name)):
            if "type" in entry:
                yield f"{name}[{i}].type", entry["type"], vocab
    declaration = _mapping(event.get("errorDeclaration"))
    if "reason" in declaration:
        yield "errorDeclaration.reason", declaration["reason"], vocabulary.ERROR_REASON


def _sensor_reports(event: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for i, element in _mappings(event.get("sensorElementList")):
        for j, report in _mappings(element.get("sensorReport")):
            yield f"sensorElementList[{i}].sensorReport[{j}]", report


def _report_units(at: str, report: Mapping[str, Any]) -> Iterator[Problem]:
    uom = report.get("uom")
    measured = [k for k in ("value", "minValue", "maxValue", "meanValue", "sDev", "percValue") if k in report]
    is_temperature = vocabulary.MEASUREMENT_TYPE.bare(str(report.get("type", ""))) == "Temperature"
    if uom is None:
        if is_temperature and measured:
            yield Problem(
                f"{at}.uom",
                f"a Temperature {measured[0]} needs its unit: uom CEL, FAH or KEL (UN/CEFACT Rec 20)",
            )
        return
    if not isinstance(uom, str) or not _UOM.fullmatch(uom):
        yield Problem(
            f"{at}.uom", f"uom {uom!r} is not a UN/CEFACT Rec 20 unit code (2-3 capitals or digits)"
        )
    elif is_temperature and uom not in vocabulary.TEMPERATURE_UOMS:
        yield Problem(f"{at}.uom", f"uom {uom!r} is not a temperature unit: use CEL, FAH or KEL")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _mappings(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """A list's objects with their index; entries of another kind are left to the schema."""
    return ((i, entry) for i, entry in enumerate(_list(value)) if isinstance(entry, Mapping))
