"""Building blocks for the engine's unit tests: profiles, series of readings, and running the engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backend.domain.excursions import Engine, Episode, Reading, parse_definition, rules_for

T0 = datetime(2026, 1, 10, tzinfo=UTC).timestamp()

FRESH = {
    "low_c": 2.0,
    "high_c": 8.0,
    "critical_low_c": 0.0,
    "critical_high_c": 15.0,
    "cumulative_minutes": 30,
    "mkt_hours": 24,
}
CRT = {"low_c": 15.0, "high_c": 25.0, "cumulative_minutes": 60, "mkt_hours": 720}
CRYO = {
    "low_c": None,
    "high_c": -150.0,
    "critical_high_c": -150.0,
    "consecutive_minutes": 5,
    "predictive": True,
}


def series(temps: list[float], every_minutes: float = 1.0, start: float = T0, **extra: Any) -> list[Reading]:
    return [Reading(start + i * every_minutes * 60, float(t), **extra) for i, t in enumerate(temps)]


def engine(definition: dict[str, Any], planned_arrival: float | None = None) -> Engine:
    return Engine(rules_for(parse_definition(definition)), planned_arrival)


def run(
    definition: dict[str, Any], readings: list[Reading], planned_arrival: float | None = None
) -> list[Episode]:
    e = engine(definition, planned_arrival)
    e.feed(readings)
    return e.drain()


def minutes(t: float) -> float:
    """Minutes after T0."""
    return (t - T0) / 60
