"""Read schemas converted from rows (backend/api/reads.py): the schema's fields only, nested rows too."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from backend.api.alerts import AcknowledgementRead, AlertRead
from backend.api.reads import read, reads
from backend.db.repo.alerts import Acknowledgement, AlertRow

AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


class _Row(msgspec.Struct, frozen=True):
    id: int
    name: str
    secret: str


class _Read(msgspec.Struct, frozen=True):
    id: int
    name: str


def _alert(**changes: object) -> AlertRow:
    fields: dict[str, object] = {
        "id": 7,
        "kind": "excursion",
        "severity": "critical",
        "status": "acknowledged",
        "title": "Above 8 °C",
        "detail": "",
        "coi": None,
        "shipment_id": "SHP-1",
        "unit_id": None,
        "logger_id": "LGR-0001",
        "sites": ["USZ"],
        "started_at": AT,
        "ended_at": None,
        "peak_value": 9.5,
        "rule": {"max_c": 8},
        "event_id": None,
        "acknowledged_at": AT,
        "acknowledged_by": "coord",
        "ack_comment": "on it",
        "closed_at": None,
        "closed_by": None,
        "close_reason": None,
        "acknowledgements": [
            Acknowledgement("coord", "A Coordinator", AT, "on it", "open", "acknowledged", "critical")
        ],
    }
    fields.update(changes)
    return AlertRow(**fields)  # type: ignore[arg-type]


def test_a_read_keeps_the_schemas_fields_and_leaves_the_rest_of_the_row_out() -> None:
    assert read(_Row(1, "a", "hash"), _Read) == _Read(1, "a")
    assert reads([_Row(1, "a", "x"), _Row(2, "b", "y")], _Read) == [_Read(1, "a"), _Read(2, "b")]


def test_a_row_without_a_field_of_the_schema_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        read(_Read(1, "a"), _Row)


def test_an_alert_row_reads_as_the_alert_schema_with_its_acknowledgements() -> None:
    row = _alert()
    alert = read(row, AlertRead)
    assert msgspec.structs.asdict(alert) | {"acknowledgements": None} == msgspec.structs.asdict(row) | {
        "acknowledgements": None
    }
    assert alert.acknowledgements == [
        AcknowledgementRead("coord", "A Coordinator", AT, "on it", "open", "acknowledged", "critical")
    ]
    assert alert.rule == {"max_c": 8}
