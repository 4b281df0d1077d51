"""Alarm states after ANSI/ISA-18.2, as the alerts table's `status` carries them. Pure.

* ``open``: active, unacknowledged: the condition holds and nobody has acknowledged it.
* ``acknowledged``: active, acknowledged.
* ``cleared_unacknowledged``: the condition ended but the alert was never acknowledged. Only critical
  alerts latch here: a critical excursion that ends by itself must still be seen and acknowledged, so it
  stays on the board and in the open list until someone does; acknowledging it resolves it.
* ``resolved``: returned to normal (and, for a critical alert, acknowledged).
* ``closed``: shelved or closed by a person with a reason, or withdrawn automatically.

Acknowledgements are a history, not a field: every one is kept (who, when, comment, the state it
acknowledged), so a second acknowledgement (after an escalation, or by a second person) adds to the
first and never replaces it.
"""

from __future__ import annotations

from typing import Final

from backend.domain.errors import Conflict

OPEN: Final = "open"
ACKNOWLEDGED: Final = "acknowledged"
CLEARED_UNACKNOWLEDGED: Final = "cleared_unacknowledged"
RESOLVED: Final = "resolved"
CLOSED: Final = "closed"
STATUSES: Final = (OPEN, ACKNOWLEDGED, CLEARED_UNACKNOWLEDGED, RESOLVED, CLOSED)
# The condition holds: one alert per condition key at a time (the partial unique index).
ACTIVE: Final = (OPEN, ACKNOWLEDGED)
# What asks for someone's attention: the board, the open list and a case's open count show these.
NEEDS_ATTENTION: Final = (OPEN, ACKNOWLEDGED, CLEARED_UNACKNOWLEDGED)
# Ended, whether acknowledged or not: the engine matches an episode that ended to these.
CLEARED: Final = (CLEARED_UNACKNOWLEDGED, RESOLVED)
LATCHING_SEVERITY: Final = "critical"


def when_cleared(status: str, severity: str, *, reopened: bool = False) -> str:
    """The status of an alert whose condition ended: a critical alert nobody acknowledged (or that an
    escalation `reopened` for a new acknowledgement) latches; anything else resolves."""
    if status == CLOSED:
        return CLOSED
    if severity == LATCHING_SEVERITY and (status == OPEN or reopened):
        return CLEARED_UNACKNOWLEDGED
    return RESOLVED


def when_raised_cleared(severity: str) -> str:
    """The status of an alert raised for an excursion that had already ended (a backlog)."""
    return CLEARED_UNACKNOWLEDGED if severity == LATCHING_SEVERITY else RESOLVED


def when_acknowledged(alert_id: int, status: str) -> str:
    """The status after an acknowledgement. Acknowledging an acknowledged alert again is allowed and
    recorded (a second person, or a comment to add); a resolved or closed alert has nothing left to
    acknowledge."""
    if status in (OPEN, ACKNOWLEDGED):
        return ACKNOWLEDGED
    if status == CLEARED_UNACKNOWLEDGED:
        return RESOLVED
    raise Conflict(f"alert {alert_id} is already {status}")


def check_closable(alert_id: int, status: str) -> None:
    if status not in NEEDS_ATTENTION:
        raise Conflict(f"alert {alert_id} is already {status}")
