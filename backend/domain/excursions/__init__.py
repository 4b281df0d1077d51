"""Excursion rules engine (pure): profile definitions and their rules, a fold over a shipment leg's
readings that carries its state from batch to batch, and the plan that reconciles the alerts table with
what the fold found."""

from backend.domain.excursions.engine import Engine
from backend.domain.excursions.profiles import (
    ProfileDefinition,
    Rule,
    RuleSet,
    RuleSpec,
    parse_definition,
    rules_for,
)
from backend.domain.excursions.reconcile import Action, ExistingAlert, Open, Retire, Update, plan
from backend.domain.excursions.state import (
    DATA_GAP,
    DEFAULT_GAP_FACTOR,
    ENGINE_KINDS,
    EngineState,
    Episode,
    Reading,
    dump_state,
    load_state,
)

__all__ = [
    "DATA_GAP",
    "DEFAULT_GAP_FACTOR",
    "ENGINE_KINDS",
    "Action",
    "Engine",
    "EngineState",
    "Episode",
    "ExistingAlert",
    "Open",
    "ProfileDefinition",
    "Reading",
    "Retire",
    "Rule",
    "RuleSet",
    "RuleSpec",
    "Update",
    "dump_state",
    "load_state",
    "parse_definition",
    "plan",
    "rules_for",
]
