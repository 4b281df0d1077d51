"""Temperature profile definitions and the alarm rules they stand for. Pure.

A definition is what `temperature_profiles.definition` and each shipment's snapshot hold. The shorthand
fields of the seeded profiles (`cumulative_minutes`, `daily_minutes`, `consecutive_minutes`, critical
limits) expand into explicit rules; a definition may instead list its `rules` itself.

Cumulative rules count time beyond a limit over a window (issue 20, finding 9): the whole leg (never
resets), each calendar day in the profile's `time_zone` (else the sending site's), or any rolling window
of `window_hours` ("at most 60 min above 8 °C in any 24 h").
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from backend.domain.errors import InvalidInput

RuleKind = Literal["instant", "consecutive", "cumulative"]
# What a cumulative rule counts over: the leg, each calendar day, or a rolling window.
Window = Literal["leg", "day", "rolling"]
# `range` counts time beyond either warning limit together (cumulative rules only): "30 min outside 2-8 °C".
LimitName = Literal["low", "high", "critical_low", "critical_high", "range"]
Severity = Literal["info", "warning", "critical"]

SEVERITY_RANK: Final = {"info": 0, "warning": 1, "critical": 2}
Minutes = Annotated[int, msgspec.Meta(ge=0, le=60 * 24 * 60)]
Celsius = Annotated[float, msgspec.Meta(ge=-273.15, le=200.0)]


class RuleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """instant: the current reading is beyond the limit and has been for `delay_minutes` (first to current
    reading). consecutive: one uninterrupted excursion (hysteresis included) has lasted `delay_minutes`,
    each reading standing for the time until the next. cumulative: the time beyond the limit, interrupted
    or not, has reached `delay_minutes` within its `window`: the whole leg (it never resets), the
    calendar day, or the last `window_hours`."""

    kind: RuleKind
    limit: LimitName
    delay_minutes: Minutes = 0
    severity: Severity = "warning"
    window: Window = "leg"
    window_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 31)] = 24


class ProfileDefinition(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    low_c: Celsius | None = None
    high_c: Celsius | None = None
    critical_low_c: Celsius | None = None
    critical_high_c: Celsius | None = None
    cumulative_minutes: Minutes | None = None
    # "At most this many minutes outside the range per calendar day", the common logger alarm.
    daily_minutes: Minutes | None = None
    consecutive_minutes: Minutes | None = None
    # Default: at once, except where a critical limit coincides with its warning limit (the cryogenic
    # profile): then the critical rule is the consecutive one ("critical when above for 5 min").
    critical_delay_minutes: Minutes | None = None
    # An excursion ends only once the temperature is back inside the limit by this margin: no flapping.
    hysteresis_c: Annotated[float, msgspec.Meta(ge=0, le=20)] = 0.5
    rate_c_per_minute: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
    rate_window_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 10
    # Dry shippers: warn when the warming trend predicts crossing the high limit before planned arrival.
    predictive: bool = False
    predict_window_minutes: Annotated[int, msgspec.Meta(ge=5, le=24 * 60)] = 60
    mkt_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 365)] | None = None
    battery_low_pct: Annotated[int, msgspec.Meta(ge=0, le=100)] = 20
    lid_open_minutes: Minutes = 0
    rules: list[RuleSpec] | None = None
    # IANA name of the zone whose calendar days the per-day rules and the summary count; None: the
    # sending site's.
    time_zone: str | None = None


class Rule(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    kind: RuleKind
    limit: LimitName
    threshold_c: float | None
    delay_s: float
    severity: Severity
    window: Window = "leg"
    window_s: float = 0.0

    def describe(self) -> str:
        if self.limit == "range":
            where = "outside the range"
        else:
            side = "above" if self.limit.endswith("high") else "below"
            where = f"{side} {self.threshold_c:g} °C"
        minutes = f"{self.delay_s / 60:g} min"
        if self.kind == "instant":
            return f"{self.severity}: {where}" + (f" for {minutes}" if self.delay_s else " at once")
        if self.window == "day":
            return f"{self.severity}: {where} for {minutes} in a calendar day"
        if self.window == "rolling":
            return f"{self.severity}: {where} for {minutes} in any {self.window_s / 3600:g} h"
        return f"{self.severity}: {where} for {minutes} {self.kind}"


class RuleSet(msgspec.Struct, frozen=True):
    definition: ProfileDefinition
    limits: dict[str, float]
    rules: list[Rule]

    def snapshot(self, rule_ids: list[str]) -> dict[str, Any]:
        """What goes into an alert's `rule` column: the rules that fired and the profile they came from."""
        return {
            "fired": [msgspec.to_builtins(r) for r in self.rules if r.id in rule_ids],
            "definition": msgspec.to_builtins(self.definition),
        }


def parse_definition(raw: Any) -> ProfileDefinition:
    try:
        definition = msgspec.convert(raw, ProfileDefinition)
    except msgspec.ValidationError as exc:
        raise InvalidInput(
            f"invalid profile definition: {exc}", field_errors={"definition": str(exc)}
        ) from None
    problems = _problems(definition)
    if problems:
        raise InvalidInput("; ".join(problems), field_errors={"definition": problems[0]})
    return definition


# Limits that must keep their order: (one, other, when is it wrong, what to say).
_LIMIT_ORDER: Final[tuple[tuple[str, str, Callable[[float, float], bool], str], ...]] = (
    ("low_c", "high_c", operator.ge, "low_c must be below high_c"),
    ("critical_high_c", "high_c", operator.lt, "critical_high_c must not be below high_c"),
    ("critical_low_c", "low_c", operator.gt, "critical_low_c must not be above low_c"),
)
_LIMIT_FIELDS: Final = ("low_c", "high_c", "critical_low_c", "critical_high_c")


def _problems(d: ProfileDefinition) -> list[str]:
    found = [message for one, other, wrong, message in _LIMIT_ORDER if _misordered(d, one, other, wrong)]
    if all(getattr(d, name) is None for name in _LIMIT_FIELDS):
        found.append("a profile needs at least one temperature limit")
    if d.time_zone is not None and not _is_time_zone(d.time_zone):
        found.append(f"unknown time zone {d.time_zone!r}")
    for rule in d.rules or []:
        found += _rule_problems(d, rule)
    return found


def _misordered(d: ProfileDefinition, one: str, other: str, wrong: Callable[[float, float], bool]) -> bool:
    first, second = getattr(d, one), getattr(d, other)
    return first is not None and second is not None and wrong(first, second)


def _is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _rule_problems(d: ProfileDefinition, rule: RuleSpec) -> list[str]:
    found = []
    if rule.window != "leg" and rule.kind != "cumulative":
        found.append("only cumulative rules may count over a day or a rolling window")
    if (limit_problem := _rule_limit_problem(d, rule)) is not None:
        found.append(limit_problem)
    return found


def _rule_limit_problem(d: ProfileDefinition, rule: RuleSpec) -> str | None:
    if rule.limit != "range":
        if getattr(d, f"{rule.limit}_c") is None:
            return f"a rule uses the limit {rule.limit} but {rule.limit}_c is not set"
        return None
    # Time beyond either warning limit adds up, which only a cumulative count can say.
    if rule.kind != "cumulative":
        return "only cumulative rules may use the limit 'range'"
    if d.low_c is None and d.high_c is None:
        return "a 'range' rule needs low_c or high_c"
    return None


def _limits(d: ProfileDefinition) -> dict[str, float]:
    named = {
        "low": d.low_c,
        "high": d.high_c,
        "critical_low": d.critical_low_c,
        "critical_high": d.critical_high_c,
    }
    return {name: value for name, value in named.items() if value is not None}


def _shorthand(d: ProfileDefinition, limits: dict[str, float]) -> list[RuleSpec]:
    warning_sides: list[LimitName] = [side for side in ("low", "high") if side in limits]
    specs = _warning_specs(d, warning_sides)
    for side in ("low", "high"):
        if (critical := _critical_spec(d, limits, side)) is not None:
            specs.append(critical)
    return specs


def _warning_specs(d: ProfileDefinition, sides: list[LimitName]) -> list[RuleSpec]:
    """The rules of the warning limits that are set: each budget given, else an alert at once."""
    if not sides:
        return []
    specs: list[RuleSpec] = []
    if d.cumulative_minutes is not None:
        specs.append(RuleSpec("cumulative", "range", d.cumulative_minutes))
    if d.daily_minutes is not None:
        specs.append(RuleSpec("cumulative", "range", d.daily_minutes, window="day"))
    if d.consecutive_minutes is not None:
        specs += [RuleSpec("consecutive", side, d.consecutive_minutes) for side in sides]
    if all(b is None for b in (d.cumulative_minutes, d.consecutive_minutes, d.daily_minutes)):
        specs += [RuleSpec("instant", side) for side in sides]
    return specs


def _critical_spec(d: ProfileDefinition, limits: dict[str, float], side: str) -> RuleSpec | None:
    critical = f"critical_{side}"
    if critical not in limits:
        return None
    delay = d.critical_delay_minutes
    if delay is None:
        # As critical_delay_minutes says: the consecutive budget where the limits coincide, else at once.
        coincides = limits.get(side) == limits[critical]
        delay = d.consecutive_minutes if coincides and d.consecutive_minutes else 0
    kind = "instant" if delay == 0 else "consecutive"
    return RuleSpec(kind, critical, delay, "critical")  # type: ignore[arg-type]


def rules_for(definition: ProfileDefinition) -> RuleSet:
    limits = _limits(definition)
    specs = definition.rules if definition.rules is not None else _shorthand(definition, limits)
    rules = [
        Rule(
            id=_rule_id(spec),
            kind=spec.kind,
            limit=spec.limit,
            threshold_c=None if spec.limit == "range" else limits[spec.limit],
            delay_s=spec.delay_minutes * 60.0,
            severity=spec.severity,
            window=spec.window,
            window_s=spec.window_hours * 3600.0 if spec.window == "rolling" else 0.0,
        )
        for spec in specs
    ]
    return RuleSet(definition=definition, limits=limits, rules=rules)


def _rule_id(spec: RuleSpec) -> str:
    kind = {"leg": spec.kind, "day": f"{spec.kind}/day", "rolling": f"{spec.kind}/{spec.window_hours}h"}
    return f"{kind[spec.window]}:{spec.limit}:{spec.delay_minutes}"
