"""The custody state machine: which step may follow which, for units and shipments. Pure: it receives the
current state and the scan, and returns the change or a Refusal saying why not.

`model` holds the vocabulary (steps, states, Change, Refusal), `checks` the checks every step shares,
`steps` one rule per step in a table and `decide`, `receipt` the signed decision after a delivery. Import
from `backend.domain.custody`: the names below are its public face."""

from __future__ import annotations

from backend.domain.custody.checks import check_open
from backend.domain.custody.model import (
    ACTION_ROLES,
    CLOSED_CASE_ACTIONS,
    EXPIRY_CHECKED,
    FINAL_UNIT_STATES,
    INFUSION_MEANINGS,
    INFUSION_SIGNER_ROLES,
    THAW_TO_INFUSION,
    Action,
    Change,
    Refusal,
    ShipmentState,
    UnitState,
)
from backend.domain.custody.receipt import RECEIPT_BLOCKING_ALERTS, RECEIPT_OVERRIDE_ROLES, receipt_decision
from backend.domain.custody.steps import STEPS, decide

__all__ = [
    "ACTION_ROLES",
    "CLOSED_CASE_ACTIONS",
    "EXPIRY_CHECKED",
    "FINAL_UNIT_STATES",
    "INFUSION_MEANINGS",
    "INFUSION_SIGNER_ROLES",
    "RECEIPT_BLOCKING_ALERTS",
    "RECEIPT_OVERRIDE_ROLES",
    "STEPS",
    "THAW_TO_INFUSION",
    "Action",
    "Change",
    "Refusal",
    "ShipmentState",
    "UnitState",
    "check_open",
    "decide",
    "receipt_decision",
]
