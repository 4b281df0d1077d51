"""EPCIS 2.0 query (the REST binding's `GET /events`): a trading partner pulls the events it may see,
filtered by the standard query parameters and paged with `nextPageToken`.

Events are the export's (`export.events_of_step`): the same custody step always yields the same EPCIS
events with the same eventIDs, whether pulled by a case document or by this query, and captured
documents' events are custody steps like any other. Only what the object gate lets the caller see is
examined: cases of the caller's sites (administrators: all).

Paging walks custody steps in (time, id) order. A page ends with the step that brings it to `perPage`
events (a receipt exports two, so a page may hold one more); the token is the position of the last step
examined, so a page may also be shorter when filters that only the exported event can answer
(disposition, location, EPC, type) skip steps. Each request examines a bounded
number of steps, so a filter that matches nothing costs a bounded time per page."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Final

import msgspec

from backend.db.repo import exports
from backend.db.types import Conn
from backend.domain.errors import InvalidInput
from backend.epcis import jobs, products, vocabulary
from backend.epcis.export import CONTEXT, Known, events_of_step
from backend.epcis.formats import iso_utc, parse_date_time
from backend.epcis.mapping import CAPTURED, EXPORTED
from backend.reports.record import CaseRecord, load_record

DEFAULT_PER_PAGE: Final = 30
MAX_PER_PAGE: Final = 100
# Custody steps looked at per request at most, whatever the filters.
MAX_EXAMINED: Final = 2000
EVENT_TYPES: Final = frozenset({"ObjectEvent", "AggregationEvent", "TransformationEvent"})
# Which EPC fields of an event each MATCH_ parameter looks in (EPCIS 2.0, 8.2.7.1): MATCH_epc the objects
# an event is about (epcList, childEPCs), MATCH_parentID the container, MATCH_inputEPC and MATCH_outputEPC
# a transformation's inputs and outputs, MATCH_anyEPC all of them.
EPC_FIELDS: Final = {
    "MATCH_epc": ("epcList", "childEPCs"),
    "MATCH_parentID": ("parentID",),
    "MATCH_inputEPC": ("inputEPCList",),
    "MATCH_outputEPC": ("outputEPCList",),
    "MATCH_anyEPC": ("epcList", "childEPCs", "parentID", "inputEPCList", "outputEPCList"),
}


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    time: datetime
    event_id: int


class EventQuery(msgspec.Struct, frozen=True, kw_only=True):
    event_types: frozenset[str] | None = None
    since: datetime | None = None  # GE_eventTime
    until: datetime | None = None  # LT_eventTime
    biz_steps: frozenset[str] | None = None
    dispositions: frozenset[str] | None = None
    # MATCH_ parameter -> the EPCs it asks for; an event must name one of each parameter's EPCs.
    epcs: dict[str, frozenset[str]] = msgspec.field(default_factory=dict)
    biz_locations: frozenset[str] | None = None
    per_page: int = DEFAULT_PER_PAGE
    after: Cursor | None = None

    def actions(self) -> list[str] | None:
        """Custody actions whose export can have one of the asked business steps (None: any)."""
        if self.biz_steps is None:
            return None
        exported = {
            key.partition(":")[0]
            for key, steps in EXPORTED.items()
            for s in steps
            if s.biz_step in self.biz_steps
        }
        # A captured step is exported with the business step its partner sent, a custom one included.
        if not self.biz_steps <= {s.biz_step for steps in EXPORTED.values() for s in steps}:
            exported |= {action.value for action in CAPTURED.values()}
        return sorted(exported)

    def admits(self, event: dict[str, Any]) -> bool:
        if self.event_types is not None and event["type"] not in self.event_types:
            return False
        if self.biz_steps is not None and event.get("bizStep") not in self.biz_steps:
            return False
        if self.dispositions is not None and event.get("disposition") not in self.dispositions:
            return False
        if (
            self.biz_locations is not None
            and (event.get("bizLocation") or {}).get("id") not in self.biz_locations
        ):
            return False
        for parameter, wanted in self.epcs.items():
            if _named(event, EPC_FIELDS[parameter]).isdisjoint(wanted):
                return False
        return True


def _named(event: dict[str, Any], fields: tuple[str, ...]) -> set[str]:
    named: set[str] = set()
    for name in fields:
        value = event.get(name)
        if isinstance(value, str):
            named.add(value)
        elif isinstance(value, list):
            named.update(v for v in value if isinstance(v, str))
    return named


def _values(params: dict[str, list[str]], name: str) -> list[str] | None:
    """A parameter's values: repeated, or comma-separated as the REST binding also allows."""
    raw = params.get(name)
    if not raw:
        return None
    values = [v.strip() for value in raw for v in value.split(",") if v.strip()]
    return values or None


def _time(params: dict[str, list[str]], name: str) -> datetime | None:
    values = _values(params, name)
    if values is None:
        return None
    try:
        return parse_date_time(values[0])
    except ValueError as exc:
        raise InvalidInput(str(exc), field_errors={name: "not an RFC 3339 date-time"}) from None


def _term(value: str, vocab: vocabulary.Vocabulary) -> str:
    # CBV terms are exported bare; a custom URI (allowed by EPCIS 2.0) is compared as it is.
    return vocab.bare(value) or value


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(cursor)).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    try:
        padded = token + "=" * (-len(token) % 4)
        return msgspec.json.decode(base64.urlsafe_b64decode(padded), type=Cursor)
    except (binascii.Error, msgspec.DecodeError, ValueError):
        raise InvalidInput(
            "nextPageToken is not one this server gave; start again without it",
            field_errors={"nextPageToken": "unknown"},
        ) from None


KNOWN: Final = frozenset(
    {
        "eventType",
        "GE_eventTime",
        "LT_eventTime",
        "EQ_bizStep",
        "EQ_disposition",
        *EPC_FIELDS,
        "EQ_bizLocation",
        "perPage",
        "nextPageToken",
    }
)


def parse_query(params: dict[str, list[str]]) -> EventQuery:
    """The query the parameters ask for; InvalidInput naming the parameter when one is not understood
    (an unknown parameter is refused rather than ignored: ignoring it would return more than asked)."""
    _refuse_unknown(params)
    # Checked in a fixed order (names, eventType, perPage, times, page token): an error names the first.
    types = _event_types(params)
    per_page = _per_page(params)
    token = _values(params, "nextPageToken")
    return EventQuery(
        event_types=types,
        since=_time(params, "GE_eventTime"),
        until=_time(params, "LT_eventTime"),
        biz_steps=_terms(params, "EQ_bizStep", vocabulary.BIZ_STEP),
        dispositions=_terms(params, "EQ_disposition", vocabulary.DISPOSITION),
        epcs={name: frozenset(found) for name in EPC_FIELDS if (found := _values(params, name))},
        biz_locations=_terms(params, "EQ_bizLocation", None),
        per_page=per_page,
        after=decode_cursor(token[0]) if token else None,
    )


def _refuse_unknown(params: dict[str, list[str]]) -> None:
    unknown = sorted(set(params) - KNOWN)
    if unknown:
        raise InvalidInput(
            f"unsupported query parameter(s) {', '.join(unknown)}; supported: {', '.join(sorted(KNOWN))}",
            field_errors={name: "unsupported" for name in unknown},
        )


def _event_types(params: dict[str, list[str]]) -> frozenset[str] | None:
    types = _values(params, "eventType")
    if types is not None and not set(types) <= EVENT_TYPES:
        raise InvalidInput(
            f"eventType may be {' or '.join(sorted(EVENT_TYPES))}: Celltrail exports no other events",
            field_errors={"eventType": "unsupported"},
        )
    return frozenset(types) if types else None


def _per_page(params: dict[str, list[str]]) -> int:
    pages = _values(params, "perPage")
    if pages is None:
        return DEFAULT_PER_PAGE
    if not pages[0].isdigit() or not 1 <= int(pages[0]) <= MAX_PER_PAGE:
        raise InvalidInput(
            f"perPage is a number from 1 to {MAX_PER_PAGE}", field_errors={"perPage": "out of range"}
        )
    return int(pages[0])


def _terms(
    params: dict[str, list[str]], name: str, vocab: vocabulary.Vocabulary | None
) -> frozenset[str] | None:
    """A parameter's values as a set (None when it is not given), CBV terms of `vocab` in their bare form."""
    values = _values(params, name)
    if not values:
        return None
    return frozenset(_term(v, vocab) if vocab is not None else v for v in values)


class EventPage(msgspec.Struct, frozen=True):
    events: list[dict[str, Any]]
    next_page: Cursor | None


async def query_events(
    conn: Conn, sites: list[str] | None, query: EventQuery, requested_by: str
) -> EventPage:
    """Must run in one read-only, repeatable-read transaction, like a case record."""
    found: list[dict[str, Any]] = []
    records: dict[str, CaseRecord] = {}
    known = Known(gtins=await products.gtins(conn))
    after, examined = query.after, 0
    while len(found) < query.per_page and examined < MAX_EXAMINED:
        batch = await exports.custody_steps_page(
            conn,
            sites,
            since=query.since,
            until=query.until,
            actions=query.actions(),
            after=(after.time, after.event_id) if after else None,
            limit=min(200, MAX_EXAMINED - examined),
        )
        if not batch:
            return EventPage(found, None)
        for step_id, coi, moment in batch:
            examined += 1
            after = Cursor(moment, step_id)
            if coi not in records:
                records[coi] = await load_record(conn, coi, patient_visible=False, requested_by=requested_by)
                known.said.update(await jobs.captured_for(conn, [e.id for e in records[coi].events]))
            record = records[coi]
            line = next((e for e in record.events if e.id == step_id), None)
            if line is None:
                continue
            found += [e for e in events_of_step(record, line, known) if query.admits(e)]
            if len(found) >= query.per_page:
                break
    return EventPage(found, after)


def query_document(events: list[dict[str, Any]], created: datetime) -> dict[str, Any]:
    """An EPCISQueryDocument holding one page of a SimpleEventQuery's results."""
    return {
        "@context": CONTEXT,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": iso_utc(created),
        "epcisBody": {
            "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": events}}
        },
    }
