"""Keeping the alerts table in step with the excursion engine: each action the engine's plan gives for a
leg (open an alert, update one, retire one) is written and announced on the outbox in the caller's
transaction, under the leg's lock (backend/services/excursions.py). One handler per action type."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from backend.db.repo import excursions as repo
from backend.db.repo.excursions import EngineAlert, Leg, NewAlert
from backend.db.types import Conn
from backend.domain import alarm_states
from backend.domain.excursions import Episode, Open, Retire, RuleSet, Update, wording
from backend.services import outbox_events

log = logging.getLogger(__name__)


class AlertChanges(msgspec.Struct):
    """What one leg's actions did to its alerts."""

    opened: int = 0
    escalated: int = 0
    resolved: int = 0


class _Leg(msgspec.Struct, frozen=True):
    """A leg's actions are applied with its rules and its alerts as they stood before."""

    conn: Any
    leg: Leg
    rules: RuleSet
    before: dict[int, EngineAlert]


def when(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def when_or_none(t: float | None) -> datetime | None:
    return None if t is None else when(t)


def condition_key(kind: str, shipment_id: str) -> str:
    return f"{kind}:{shipment_id}"


def _payload(
    alert_id: int, leg: Leg, episode: Episode, title: str, status: str, event: str
) -> dict[str, Any]:
    return {
        "id": alert_id,
        "event": event,
        "alert_kind": episode.kind,
        "severity": episode.severity,
        "title": title,
        "status": status,
        "shipment_id": leg.shipment_id,
        "logger_id": leg.logger_id,
        "started_at": when_or_none(episode.start),
        "ended_at": when_or_none(episode.end),
        "peak_value": episode.peak,
        "minutes_beyond": round(episode.minutes_beyond, 1),
    }


def _rule_snapshot(leg: Leg, rules: RuleSet, episode: Episode) -> dict[str, Any]:
    return {
        "profile": leg.profile_code,
        "version": leg.profile_version,
        **rules.snapshot(list(episode.rules)),
    }


async def _retire(at: _Leg, action: Retire, changes: AlertChanges) -> None:
    await repo.withdraw(at.conn, action.alert_id)
    before = at.before[action.alert_id]
    await outbox_events.announce(
        at.conn,
        "alert",
        before.sites,
        at.leg.coi,
        {
            "id": action.alert_id,
            "event": "withdrawn",
            "alert_kind": before.kind,
            "status": "closed",
            "reason": repo.WITHDRAWN,
            "shipment_id": at.leg.shipment_id,
        },
    )
    changes.resolved += 1


async def _open(at: _Leg, action: Open, changes: AlertChanges) -> None:
    leg, episode = at.leg, action.episode
    title = wording.title(episode.kind, leg.shipment_id, at.rules)
    status = alarm_states.OPEN
    if episode.end is not None:
        status = alarm_states.when_raised_cleared(episode.severity)
    # An escalation raised after the warning was closed fired when the episode escalated.
    fired = episode.escalated_at if action.escalates is not None else None
    sites = [leg.from_site, leg.to_site]
    alert_id = await repo.insert_alert(
        at.conn,
        NewAlert(
            kind=episode.kind,
            severity=episode.severity,
            status=status,
            title=title,
            detail=wording.detail(episode, leg.logger_id, at.rules),
            condition_key=condition_key(episode.kind, leg.shipment_id),
            sites=sites,
            coi=leg.coi,
            shipment_id=leg.shipment_id,
            logger_id=leg.logger_id,
            started_at=when(episode.start),
            ended_at=when_or_none(episode.end),
            fired_at=when(fired if fired is not None else episode.fired_at),
            escalated_at=when_or_none(episode.escalated_at),
            peak_value=episode.peak,
            minutes_beyond=episode.minutes_beyond,
            rule=_rule_snapshot(leg, at.rules, episode),
        ),
    )
    if alert_id is None:
        # Only a concurrent writer outside the leg lock could hold the key; the next run retries.
        log.warning("alert condition already open", extra={"shipment": leg.shipment_id, "kind": episode.kind})
        return
    changes.opened += 1
    payload = _payload(alert_id, leg, episode, title, status, "opened")
    if action.escalates is not None:
        payload["escalates"] = action.escalates
    await outbox_events.announce(at.conn, "alert", sites, leg.coi, payload)


async def _update(at: _Leg, action: Update, changes: AlertChanges) -> None:
    leg, episode = at.leg, action.episode
    title = wording.title(episode.kind, leg.shipment_id, at.rules)
    before = at.before[action.alert_id]
    severity = episode.severity if action.escalate else before.severity
    cleared = (
        alarm_states.when_cleared(before.status, severity, reopened=action.escalate)
        if action.resolve
        else None
    )
    await repo.update_alert(
        at.conn,
        action.alert_id,
        severity=severity,
        detail=wording.detail(episode, leg.logger_id, at.rules),
        started_at=when(episode.start),
        ended_at=when_or_none(episode.end),
        escalated_at=when_or_none(episode.escalated_at) if action.escalate else None,
        peak_value=episode.peak,
        minutes_beyond=episode.minutes_beyond,
        rule=_rule_snapshot(leg, at.rules, episode),
        cleared_status=cleared,
        reopen=action.escalate,
    )
    if action.escalate:
        changes.escalated += 1
        status = cleared if cleared is not None else alarm_states.OPEN
        payload = _payload(action.alert_id, leg, episode, title, status, "escalated")
        await outbox_events.announce(at.conn, "alert", before.sites, leg.coi, payload)
    if cleared is not None:
        changes.resolved += 1
        # A latched critical alert stays on the board: the stream says it cleared, not resolved.
        event = "cleared" if cleared == alarm_states.CLEARED_UNACKNOWLEDGED else "resolved"
        payload = _payload(action.alert_id, leg, episode, title, cleared, event)
        await outbox_events.announce(at.conn, "alert", before.sites, leg.coi, payload)


_HANDLERS: dict[type, Callable[[_Leg, Any, AlertChanges], Awaitable[None]]] = {
    Retire: _retire,
    Open: _open,
    Update: _update,
}


async def apply(
    conn: Conn, leg: Leg, rules: RuleSet, actions: list[Any], existing: list[EngineAlert]
) -> AlertChanges:
    """Write and announce the engine's actions for one leg, in order."""
    at = _Leg(conn, leg, rules, {a.id: a for a in existing})
    changes = AlertChanges()
    for action in actions:
        await _HANDLERS[type(action)](at, action, changes)
    return changes
