"""What to do with the alerts table so it says what the engine found. Pure.

An alert stands for one episode. It is found again by its start, else (the open one of its kind) by
overlap, since a backlog may move an episode's start earlier; a resolved one by overlap too. An alert a
coordinator closed stays closed for its episode: matching it by start keeps the engine from reopening it.
An alert raised on partial data that the complete readings do not bear out is withdrawn, never deleted:
it was announced, and the record keeps what was said. Closing by hand does not end the excursion: the
closed alert's `ended_at` is filled in when the engine sees the excursion end.

Escalation always raises (issue 20, finding 1): when a coordinator closed the warning of an excursion
that then becomes critical, the closed warning stays closed and a new critical alert opens for the same
episode. A critical alert whose episode ends while unacknowledged latches (``cleared_unacknowledged``,
see backend/domain/alarm_states.py) instead of resolving.
"""

from __future__ import annotations

import math

import msgspec

from backend.domain import alarm_states
from backend.domain.excursions.profiles import SEVERITY_RANK
from backend.domain.excursions.state import DATA_GAP, Episode

ONGOING = alarm_states.ACTIVE


class ExistingAlert(msgspec.Struct, frozen=True):
    id: int
    kind: str
    status: str
    severity: str
    started_at: float
    ended_at: float | None
    peak_value: float | None
    minutes_beyond: float | None
    withdrawn: bool = False


class Open(msgspec.Struct, frozen=True, tag=True):
    episode: Episode
    # The alert of the same episode a person closed at a lower severity: this one is its escalation.
    escalates: int | None = None


class Update(msgspec.Struct, frozen=True, tag=True):
    alert_id: int
    episode: Episode
    escalate: bool
    resolve: bool


class Retire(msgspec.Struct, frozen=True, tag=True):
    """An alert the readings no longer bear out (a backlog filled the gap that made it): withdraw it."""

    alert_id: int


Action = Open | Update | Retire


def _overlaps(alert: ExistingAlert, episode: Episode) -> bool:
    alert_end = math.inf if alert.ended_at is None else alert.ended_at
    episode_end = math.inf if episode.end is None else episode.end
    return alert.started_at <= episode_end and episode.start <= alert_end


def _match(episode: Episode, candidates: list[ExistingAlert]) -> ExistingAlert | None:
    same_kind = [a for a in candidates if a.kind == episode.kind and not a.withdrawn]
    # An escalation raised after a close shares the closed alert's start: the live one speaks for it.
    same_kind.sort(key=lambda a: a.status == alarm_states.CLOSED)
    for alert in same_kind:
        if alert.started_at == episode.start:
            return alert
    if episode.kind == DATA_GAP:
        # A gap is fixed by the two readings around it; two gaps that touch are two notices.
        return None
    for alert in same_kind:
        if alert.status in ONGOING and _overlaps(alert, episode):
            return alert
    for alert in same_kind:
        if alert.status in alarm_states.CLEARED and alert.ended_at is not None and _overlaps(alert, episode):
            return alert
    return None


def _changed(alert: ExistingAlert, episode: Episode) -> bool:
    return (
        alert.started_at != episode.start
        or alert.peak_value != episode.peak
        or alert.minutes_beyond is None
        or abs(alert.minutes_beyond - episode.minutes_beyond) > 1e-9
        or (episode.end is not None and alert.ended_at != episode.end)
    )


def plan(episodes: list[Episode], existing: list[ExistingAlert], full: bool) -> list[Action]:
    """Updates and resolutions first, then new alerts: an episode that ended frees its condition key for
    the next one of the same kind. With `full` (the whole leg was recomputed), an alert the engine raised
    that no episode accounts for any more is withdrawn."""
    left = list(existing)
    updates: list[Action] = []
    opens: list[Action] = []
    for episode in sorted(episodes, key=lambda e: e.start):
        alert = _match(episode, left)
        if alert is not None:
            left.remove(alert)
        action = Open(episode) if alert is None else _for_match(episode, alert)
        if isinstance(action, Open):
            opens.append(action)
        elif action is not None:
            updates.append(action)
    if full:
        retirable = (*ONGOING, *alarm_states.CLEARED)
        updates += [Retire(a.id) for a in left if not a.withdrawn and a.status in retirable]
    return updates + opens


def _for_match(episode: Episode, alert: ExistingAlert) -> Action | None:
    """What an episode does to the alert that stands for it (None: the alert already says it)."""
    escalate = SEVERITY_RANK[episode.severity] > SEVERITY_RANK[alert.severity]
    if alert.status == alarm_states.CLOSED:
        return _for_closed(episode, alert, escalate)
    resolve = episode.end is not None and alert.status in ONGOING
    if escalate or resolve or _changed(alert, episode):
        return Update(alert.id, episode, escalate, resolve)
    return None


def _for_closed(episode: Episode, alert: ExistingAlert, escalate: bool) -> Action | None:
    # Closing a warning is a decision about the warning; a critical condition was not seen yet.
    if escalate:
        return Open(episode, escalates=alert.id)
    if episode.end is not None and alert.ended_at is None and not alert.withdrawn:
        # Closed by hand while the excursion went on: it keeps its status and learns its end.
        return Update(alert.id, episode, escalate=False, resolve=False)
    return None
