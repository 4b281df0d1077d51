"""A profile definition's checks and its shorthand expansion, one row per rule."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from backend.domain.excursions import profiles
from backend.domain.excursions.profiles import ProfileDefinition


def _definition(**fields: Any) -> ProfileDefinition:
    return msgspec.convert(fields, ProfileDefinition)


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({"low_c": 2.0, "high_c": 8.0}, []),
        ({"low_c": 8.0, "high_c": 8.0}, ["low_c must be below high_c"]),
        ({"high_c": 8.0, "critical_high_c": 8.0}, []),
        ({"high_c": 8.0, "critical_high_c": 7.0}, ["critical_high_c must not be below high_c"]),
        ({"low_c": 2.0, "critical_low_c": 2.0}, []),
        ({"low_c": 2.0, "critical_low_c": 3.0}, ["critical_low_c must not be above low_c"]),
        ({"critical_high_c": 5.0}, []),
        ({}, ["a profile needs at least one temperature limit"]),
        ({"high_c": 8.0, "time_zone": "Europe/Berlin"}, []),
        ({"high_c": 8.0, "time_zone": "Mars/Olympus"}, ["unknown time zone 'Mars/Olympus'"]),
        ({"high_c": 8.0, "time_zone": "../etc"}, ["unknown time zone '../etc'"]),
        (
            {"high_c": 8.0, "rules": [{"kind": "consecutive", "limit": "high", "window": "day"}]},
            ["only cumulative rules may count over a day or a rolling window"],
        ),
        ({"high_c": 8.0, "rules": [{"kind": "cumulative", "limit": "high", "window": "rolling"}]}, []),
        (
            {"high_c": 8.0, "rules": [{"kind": "instant", "limit": "range"}]},
            ["only cumulative rules may use the limit 'range'"],
        ),
        (
            {"critical_high_c": 8.0, "rules": [{"kind": "cumulative", "limit": "range"}]},
            ["a 'range' rule needs low_c or high_c"],
        ),
        ({"low_c": 2.0, "rules": [{"kind": "cumulative", "limit": "range"}]}, []),
        (
            {"high_c": 8.0, "rules": [{"kind": "instant", "limit": "critical_high"}]},
            ["a rule uses the limit critical_high but critical_high_c is not set"],
        ),
        # Every problem is named, in the order of the checks.
        (
            {
                "low_c": 9.0,
                "high_c": 8.0,
                "critical_low_c": 10.0,
                "time_zone": "Nowhere",
                "rules": [{"kind": "consecutive", "limit": "range", "window": "day"}],
            },
            [
                "low_c must be below high_c",
                "critical_low_c must not be above low_c",
                "unknown time zone 'Nowhere'",
                "only cumulative rules may count over a day or a rolling window",
                "only cumulative rules may use the limit 'range'",
            ],
        ),
    ],
)
def test_definition_problems(fields: dict[str, Any], problems: list[str]) -> None:
    assert profiles._problems(_definition(**fields)) == problems


@pytest.mark.parametrize(
    ("fields", "rule_ids"),
    [
        ({"low_c": 2.0, "high_c": 8.0}, ["instant:low:0", "instant:high:0"]),
        ({"high_c": 8.0, "cumulative_minutes": 60}, ["cumulative:range:60"]),
        ({"low_c": 2.0, "high_c": 8.0, "daily_minutes": 30}, ["cumulative/day:range:30"]),
        (
            {"low_c": 2.0, "high_c": 8.0, "consecutive_minutes": 10},
            ["consecutive:low:10", "consecutive:high:10"],
        ),
        (
            {"high_c": 8.0, "cumulative_minutes": 60, "daily_minutes": 30, "consecutive_minutes": 10},
            ["cumulative:range:60", "cumulative/day:range:30", "consecutive:high:10"],
        ),
        # Without warning limits the budgets have nothing to count.
        (
            {"critical_high_c": 15.0, "cumulative_minutes": 60, "consecutive_minutes": 10},
            ["instant:critical_high:0"],
        ),
        ({"high_c": 8.0, "critical_high_c": 15.0}, ["instant:high:0", "instant:critical_high:0"]),
        (
            {"high_c": 8.0, "critical_high_c": 15.0, "critical_delay_minutes": 5},
            ["instant:high:0", "consecutive:critical_high:5"],
        ),
        # A critical limit that coincides with the warning limit waits as the consecutive rule does.
        (
            {"high_c": -150.0, "critical_high_c": -150.0, "consecutive_minutes": 5},
            ["consecutive:high:5", "consecutive:critical_high:5"],
        ),
        ({"high_c": -150.0, "critical_high_c": -150.0}, ["instant:high:0", "instant:critical_high:0"]),
        (
            {
                "low_c": 2.0,
                "critical_low_c": 0.0,
                "high_c": 8.0,
                "critical_high_c": 15.0,
                "consecutive_minutes": 5,
            },
            ["consecutive:low:5", "consecutive:high:5", "instant:critical_low:0", "instant:critical_high:0"],
        ),
    ],
)
def test_shorthand_rules(fields: dict[str, Any], rule_ids: list[str]) -> None:
    assert [r.id for r in profiles.rules_for(_definition(**fields)).rules] == rule_ids
