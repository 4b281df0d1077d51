"""The EPCIS rules kept as small functions, one row per rule: which captured event becomes which custody
step or why it cannot, which query parameters are refused, and where a wrong CBV term is reported."""

from __future__ import annotations

from typing import Any

import pytest

from backend.domain.custody import Action
from backend.domain.errors import InvalidInput
from backend.epcis import capture, query, validate

OBSERVE = {"type": "ObjectEvent", "action": "OBSERVE"}
PACK = {"type": "AggregationEvent", "action": "ADD"}
OURS = {"urn:unit": "U1"}


@pytest.mark.parametrize(
    ("event", "ours", "expected"),
    [
        ({"bizStep": "shipping"}, OURS, (Action.PICKUP, "shipping")),
        ({"bizStep": "urn:epcglobal:cbv:bizstep:receiving"}, OURS, (Action.RECEIVE, "receiving")),
        ({"bizStep": "packing"}, OURS, (Action.PACK, "packing")),
        ({"bizStep": "shipping"}, {}, "names none of Celltrail's units"),
        ({"bizStep": "inspecting"}, OURS, "business step 'inspecting' is not a custody step"),
        ({"bizStep": "https://example.com/voc/mine"}, OURS, "'https://example.com/voc/mine' is not"),
        ({}, OURS, "business step '(none)' is not"),
    ],
)
def test_custody_step(event: dict[str, Any], ours: dict[str, str], expected: Any) -> None:
    if isinstance(expected, tuple):
        assert capture._custody_step(event, ours) == expected
    else:
        with pytest.raises(capture._Ignored, match=expected.replace("(", r"\(").replace(")", r"\)")):
            capture._custody_step(event, ours)


@pytest.mark.parametrize(
    ("event", "action", "foreign", "expected"),
    [
        (OBSERVE, Action.PICKUP, [], None),
        (PACK, Action.PACK, [], None),
        (OBSERVE, Action.PICKUP, ["urn:theirs"], "urn:theirs is not a Celltrail unit or shipment"),
        (OBSERVE, Action.PACK, [], "packing is captured as an AggregationEvent ADD"),
        ({**PACK, "action": "DELETE"}, Action.PACK, [], "packing is captured as an AggregationEvent ADD"),
        (PACK, Action.RECEIVE, [], "step is captured as an ObjectEvent OBSERVE"),
        ({**OBSERVE, "action": "ADD"}, Action.STORE, [], "step is captured as an ObjectEvent OBSERVE"),
        (
            {**OBSERVE, "disposition": "dispensed"},
            Action.DISPENSE,
            [],
            "an infusion is recorded at the bedside",
        ),
        ({**OBSERVE, "disposition": "in_progress"}, Action.DISPENSE, [], None),
        ({**OBSERVE, "disposition": "dispensed"}, Action.RECEIVE, [], None),
    ],
)
def test_unrecordable(
    event: dict[str, Any], action: Action, foreign: list[str], expected: str | None
) -> None:
    problem = capture._unrecordable(event, action, "step", foreign)
    assert (problem is None) if expected is None else (problem is not None and expected in problem)


@pytest.mark.parametrize(
    ("event", "action", "expected"),
    [
        ({"bizLocation": {"id": "urn:fridge"}}, Action.STORE, "urn:fridge"),
        ({"bizLocation": {"id": "urn:fridge"}}, Action.RECEIVE, None),
        ({}, Action.RECEIVE, None),
        ({}, Action.STORE, capture._Unrecordable),
        ({"bizLocation": "urn:fridge"}, Action.STORE, capture._Unrecordable),
        ({"bizLocation": {"id": ""}}, Action.STORE, capture._Unrecordable),
    ],
)
def test_storage(event: dict[str, Any], action: Action, expected: Any) -> None:
    if expected is capture._Unrecordable:
        with pytest.raises(capture._Unrecordable, match="names the storage location"):
            capture._storage(event, action)
    else:
        assert capture._storage(event, action) == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"colour": ["red"]}, "colour"),
        ({"eventType": ["TransactionEvent"]}, "eventType"),
        ({"perPage": ["0"]}, "perPage"),
        ({"perPage": ["ten"]}, "perPage"),
        ({"perPage": [str(query.MAX_PER_PAGE + 1)]}, "perPage"),
        ({"GE_eventTime": ["yesterday"]}, "GE_eventTime"),
        ({"LT_eventTime": ["tomorrow"]}, "LT_eventTime"),
        ({"nextPageToken": ["!!"]}, "nextPageToken"),
        # The first problem in the fixed order is the one named.
        ({"eventType": ["Nope"], "perPage": ["0"]}, "eventType"),
        ({"perPage": ["0"], "GE_eventTime": ["x"]}, "perPage"),
    ],
)
def test_parse_query_refuses(params: dict[str, list[str]], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        query.parse_query(params)
    assert set(refused.value.field_errors) == {field}


def test_parse_query_reads_every_parameter() -> None:
    parsed = query.parse_query(
        {
            "eventType": ["ObjectEvent,AggregationEvent"],
            "perPage": ["7"],
            "EQ_bizStep": ["urn:epcglobal:cbv:bizstep:shipping", "https://example.com/voc/mine"],
            "EQ_disposition": ["in_transit"],
            "EQ_bizLocation": ["urn:a, urn:b"],
        }
    )
    assert parsed.event_types == frozenset({"ObjectEvent", "AggregationEvent"})
    assert parsed.per_page == 7
    assert parsed.biz_steps == frozenset({"shipping", "https://example.com/voc/mine"})
    assert parsed.dispositions == frozenset({"in_transit"})
    assert parsed.biz_locations == frozenset({"urn:a", "urn:b"})
    assert (parsed.since, parsed.until, parsed.after, parsed.epcs) == (None, None, None, {})
    defaults = query.parse_query({})
    assert defaults.per_page == query.DEFAULT_PER_PAGE
    assert (defaults.event_types, defaults.biz_steps, defaults.dispositions, defaults.biz_locations) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("event", "paths"),
    [
        ({"bizStep": "shipping", "disposition": "in_transit"}, []),
        ({"bizStep": "bogus"}, ["e.bizStep"]),
        ({"disposition": "bogus"}, ["e.disposition"]),
        (
            {"persistentDisposition": {"set": ["in_transit", "bad"], "unset": ["worse"]}},
            [
                "e.persistentDisposition.set[1]",
                "e.persistentDisposition.unset[0]",
            ],
        ),
        ({"sourceList": [{"type": "owning_party"}, {"type": "bad"}, "skipped"]}, ["e.sourceList[1].type"]),
        ({"destinationList": [{"type": "bad"}, {"destination": "no type"}]}, ["e.destinationList[0].type"]),
        ({"bizTransactionList": [{"type": "po"}, {"type": "bad"}]}, ["e.bizTransactionList[1].type"]),
        ({"errorDeclaration": {"reason": "bad"}}, ["e.errorDeclaration.reason"]),
        ({"errorDeclaration": {"reason": "incorrect_data"}}, []),
        (
            {"sensorElementList": ["skipped", {"sensorReport": [{"type": "Temperature", "value": 3}]}]},
            ["e.sensorElementList[1].sensorReport[0].uom"],
        ),
        (
            {"sensorElementList": [{"sensorReport": [{"uom": "lowercase"}]}]},
            ["e.sensorElementList[0].sensorReport[0].uom"],
        ),
        # Reported in the order of the fields, whatever the order of the keys.
        (
            {"errorDeclaration": {"reason": "bad"}, "bizStep": "bogus"},
            ["e.bizStep", "e.errorDeclaration.reason"],
        ),
    ],
)
def test_event_vocabulary(event: dict[str, Any], paths: list[str]) -> None:
    assert [p.path for p in validate._event_vocabulary("e", event)] == paths
