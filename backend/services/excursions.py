"""Running the excursion engine on stored readings and keeping the alerts table in step with it.

Each leg (shipment) is evaluated in its own transaction under the row lock of its engine state, so any
number of backend replicas may evaluate at once. The engine's state after the last folded reading is
stored with the leg; readings that land after it are folded incrementally, a backlog that lands before it
makes the leg start over from its first reading. Alerts go through the outbox like every other change,
so the live stream carries them within the same commit.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from backend.db.repo import alerts, shipments
from backend.db.repo import excursions as repo
from backend.db.repo.alerts import AlertRow
from backend.db.repo.excursions import EngineAlert, Leg, LegReading, NewAlert
from backend.db.repo.shipments import ShipmentRow
from backend.db.types import Conn, Pool
from backend.domain import alarm_states
from backend.domain.access import Principal
from backend.domain.errors import InvalidInput
from backend.domain.excursions import (
    DATA_GAP,
    DEFAULT_GAP_FACTOR,
    ENGINE_KINDS,
    Engine,
    Episode,
    ExistingAlert,
    Open,
    Reading,
    Retire,
    RuleSet,
    Update,
    dump_state,
    load_state,
    parse_definition,
    plan,
    rules_for,
    wording,
)
from backend.domain.excursions.gaps import find_gaps
from backend.domain.temperature import summarise
from backend.services import ledger
from backend.services.cases import get_case
from backend.services.shipments import get_shipment
from backend.services.visibility import site_filter

log = logging.getLogger(__name__)
_KINDS = list(ENGINE_KINDS)
_gap_factor = DEFAULT_GAP_FACTOR
_gap_settle_s = 60.0


def gap_factor() -> float:
    return _gap_factor


def gap_starts(times: Iterable[datetime], interval_s: int | None) -> list[float]:
    """Where the data gaps of a leg's series begin (unix seconds), by the engine's rule: for summaries
    that do not run the rules (the receipt, the vein-to-vein report)."""
    found = find_gaps((t.timestamp() for t in times), float(interval_s) if interval_s else None, _gap_factor)
    return [start for start, _end in found]


def configure(gap_factor: float, gap_settle_seconds: float = 60.0) -> None:
    """CELLTRAIL_GAP_FACTOR and CELLTRAIL_GAP_SETTLE_SECONDS, set once at start (like signing.configure):
    an interval between two readings longer than this many of the logger's expected intervals is a data
    gap, and its notice waits this long after the reading that ends it arrived."""
    global _gap_factor, _gap_settle_s  # process-wide settings, read on every evaluation
    _gap_factor = gap_factor
    _gap_settle_s = gap_settle_seconds


@functools.cache
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _engine(
    rules: RuleSet, leg_arrival: datetime, interval_s: int | None, site_zone: str, state: Any = None
) -> Engine:
    """Calendar days are the profile's time zone's (checked when the profile was saved), else the
    sending site's, else UTC."""
    zone = rules.definition.time_zone or (site_zone if _known_zone(site_zone) else "UTC")
    return Engine(
        rules,
        leg_arrival.timestamp(),
        state,
        expected_interval_s=float(interval_s) if interval_s else None,
        gap_factor=_gap_factor,
        time_zone=zone,
    )


class Evaluation(msgspec.Struct, frozen=True):
    shipment_id: str
    folded: int
    full: bool
    opened: int = 0
    escalated: int = 0
    resolved: int = 0


def _when(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _dt(t: float | None) -> datetime | None:
    return None if t is None else _when(t)


def condition_key(kind: str, shipment_id: str) -> str:
    return f"{kind}:{shipment_id}"


def rules_of(profile: Any) -> RuleSet:
    return rules_for(parse_definition(profile))


def _existing(alert: EngineAlert) -> ExistingAlert:
    return ExistingAlert(
        id=alert.id,
        kind=alert.kind,
        status=alert.status,
        severity=alert.severity,
        started_at=alert.started_at.timestamp(),
        ended_at=alert.ended_at.timestamp() if alert.ended_at else None,
        peak_value=alert.peak_value,
        minutes_beyond=alert.minutes_beyond,
        withdrawn=alert.withdrawn,
    )


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
        "started_at": _dt(episode.start),
        "ended_at": _dt(episode.end),
        "peak_value": episode.peak,
        "minutes_beyond": round(episode.minutes_beyond, 1),
    }


async def _apply(
    conn: Conn, leg: Leg, rules: RuleSet, actions: list[Any], existing: list[EngineAlert]
) -> Evaluation:
    sites = [leg.from_site, leg.to_site]
    by_id = {a.id: a for a in existing}
    opened = escalated = resolved = 0
    snapshot_of = {"profile": leg.profile_code, "version": leg.profile_version}
    for action in actions:
        if isinstance(action, Retire):
            await repo.withdraw(conn, action.alert_id)
            await ledger.announce(
                conn,
                "alert",
                by_id[action.alert_id].sites,
                leg.coi,
                {
                    "id": action.alert_id,
                    "event": "withdrawn",
                    "alert_kind": by_id[action.alert_id].kind,
                    "status": "closed",
                    "reason": repo.WITHDRAWN,
                    "shipment_id": leg.shipment_id,
                },
            )
            resolved += 1
            continue
        episode = action.episode
        title = wording.title(episode.kind, leg.shipment_id, rules)
        text = wording.detail(episode, leg.logger_id, rules)
        rule = {**snapshot_of, **rules.snapshot(list(episode.rules))}
        if isinstance(action, Open):
            status = alarm_states.OPEN
            if episode.end is not None:
                status = alarm_states.when_raised_cleared(episode.severity)
            # An escalation raised after the warning was closed fired when the episode escalated.
            fired = episode.escalated_at if action.escalates is not None else None
            alert_id = await repo.insert_alert(
                conn,
                NewAlert(
                    kind=episode.kind,
                    severity=episode.severity,
                    status=status,
                    title=title,
                    detail=text,
                    condition_key=condition_key(episode.kind, leg.shipment_id),
                    sites=sites,
                    coi=leg.coi,
                    shipment_id=leg.shipment_id,
                    logger_id=leg.logger_id,
                    started_at=_when(episode.start),
                    ended_at=_dt(episode.end),
                    fired_at=_when(fired if fired is not None else episode.fired_at),
                    escalated_at=_dt(episode.escalated_at),
                    peak_value=episode.peak,
                    minutes_beyond=episode.minutes_beyond,
                    rule=rule,
                ),
            )
            if alert_id is None:
                # Only a concurrent writer outside the leg lock could hold the key; the next run retries.
                log.warning(
                    "alert condition already open", extra={"shipment": leg.shipment_id, "kind": episode.kind}
                )
                continue
            opened += 1
            payload = _payload(alert_id, leg, episode, title, status, "opened")
            if action.escalates is not None:
                payload["escalates"] = action.escalates
            await ledger.announce(conn, "alert", sites, leg.coi, payload)
            continue
        assert isinstance(action, Update)
        before = by_id[action.alert_id]
        severity = episode.severity if action.escalate else before.severity
        cleared = (
            alarm_states.when_cleared(before.status, severity, reopened=action.escalate)
            if action.resolve
            else None
        )
        await repo.update_alert(
            conn,
            action.alert_id,
            severity=severity,
            detail=text,
            started_at=_when(episode.start),
            ended_at=_dt(episode.end),
            escalated_at=_dt(episode.escalated_at) if action.escalate else None,
            peak_value=episode.peak,
            minutes_beyond=episode.minutes_beyond,
            rule=rule,
            cleared_status=cleared,
            reopen=action.escalate,
        )
        if action.escalate:
            escalated += 1
            status = cleared if cleared is not None else alarm_states.OPEN
            await ledger.announce(
                conn,
                "alert",
                before.sites,
                leg.coi,
                _payload(action.alert_id, leg, episode, title, status, "escalated"),
            )
        if cleared is not None:
            resolved += 1
            # A latched critical alert stays on the board: the stream says it cleared, not resolved.
            event = "cleared" if cleared == alarm_states.CLEARED_UNACKNOWLEDGED else "resolved"
            await ledger.announce(
                conn,
                "alert",
                before.sites,
                leg.coi,
                _payload(action.alert_id, leg, episode, title, cleared, event),
            )
    return Evaluation(leg.shipment_id, 0, False, opened, escalated, resolved)


def _fold(leg: Leg, dirty_from: datetime | None, rows: list[LegReading]) -> tuple[Engine, bool] | None:
    """The leg's engine after folding `rows`, and whether it started over; None when there is nothing
    to do or its profile cannot be read. A received leg's `rows` are all its readings (see
    `_through`): a late reading inside its window re-evaluates it from the start, since its state was
    closed at the receipt."""
    full = leg.state is None or (
        dirty_from is not None and leg.through_ts is not None and dirty_from <= leg.through_ts
    )
    state = None if full else load_state(leg.state or b"")
    if state is not None and leg.received_at is not None:
        through = leg.through_ts
        rows = [r for r in rows if through is None or r.ts > through]
        if state.closed and rows:
            full, state = True, None
    # A gap notice held back (see `_hold_unsettled_gaps`) brings the leg back without a new reading.
    pending = state is not None and bool(state.unsettled)
    if not rows and leg.received_at is None and not full and not pending:
        return None
    try:
        rules = rules_of(leg.profile)
    except InvalidInput as exc:
        log.error("shipment profile unreadable", extra={"shipment": leg.shipment_id, "error": exc.detail})
        return None
    engine = _engine(rules, leg.planned_arrival, leg.sample_interval_s, leg.site_time_zone, state)
    if engine.state.closed and not rows and not full:
        return None
    engine.feed(Reading(r.ts.timestamp(), r.temp_c, r.battery_pct, r.lid_open) for r in rows)
    if leg.received_at is not None:
        engine.close(leg.received_at.timestamp())
    return engine, full


def _through(leg: Leg) -> datetime | None:
    """Where the readings to take start: after the last folded one, or (None) from the leg's start. A
    received leg takes them all, so a late reading can make it start over without a second look-up."""
    return None if leg.received_at is not None else leg.through_ts


async def _evaluate_legs(conn: Conn, shipment_ids: list[str]) -> list[Evaluation]:
    """One transaction for many legs: a handful of statements whatever their number, plus one per alert
    that changes. That keeps the cost per ingest batch flat under a fleet's steady load."""
    legs = await repo.lock_legs(conn, shipment_ids)
    taken = await repo.take_readings(conn, [(leg.shipment_id, _through(leg)) for leg in legs])
    folded: list[tuple[Leg, Engine, bool, list[Episode]]] = []
    for leg in legs:
        dirty_from, rows = taken.get(leg.shipment_id, (None, []))
        result = _fold(leg, dirty_from, rows)
        if result is not None:
            engine, full = result
            folded.append((leg, engine, full, engine.drain()))
    needing = [leg.shipment_id for leg, _e, full, episodes in folded if episodes or full]
    existing = await repo.engine_alerts(conn, needing, _KINDS) if needing else {}
    outcomes = []
    saved = []
    again: list[tuple[str, str, datetime]] = []
    for leg, engine, full, episodes in folded:
        count = len(taken.get(leg.shipment_id, (None, []))[1])
        outcome = Evaluation(leg.shipment_id, count, full)
        if leg.received_at is None and leg.logger_id is not None:
            rows = taken.get(leg.shipment_id, (None, []))[1]
            episodes = _hold_unsettled_gaps(engine, episodes, rows, existing.get(leg.shipment_id, []))
            if engine.state.unsettled and engine.state.last is not None:
                again.append((leg.shipment_id, leg.logger_id, _when(engine.state.last.t + 1e-3)))
        if episodes or full:
            mine = existing.get(leg.shipment_id, [])
            actions = plan(episodes, [_existing(a) for a in mine], full)
            applied = await _apply(conn, leg, engine.rules, actions, mine)
            outcome = msgspec.structs.replace(applied, folded=count, full=full)
        outcomes.append(outcome)
        last = engine.state.last
        saved.append(
            repo.SavedState(
                leg.shipment_id,
                _dt(last.t) if last else None,
                engine.state.readings,
                dump_state(engine.state),
                full,
            )
        )
    if saved:
        await repo.save_states(conn, saved)
    if again:
        await repo.mark_again(conn, again)
    return outcomes


def _hold_unsettled_gaps(
    engine: Engine, episodes: list[Episode], rows: list[LegReading], existing: list[EngineAlert]
) -> list[Episode]:
    """Gap notices not yet announced wait until the reading that ends the gap arrived
    CELLTRAIL_GAP_SETTLE_SECONDS ago: a logger flushing its memory in shuffled pieces fills the holes of
    the first pieces with the next ones, and a notice raised meanwhile would only be withdrawn (flapping).
    Held ones go back into the state to be drained at the next evaluation (the sweep's mark). A gap
    already announced is reconciled as usual."""
    if _gap_settle_s <= 0:
        return episodes
    announced = {a.started_at.timestamp() for a in existing if a.kind == DATA_GAP and not a.withdrawn}
    arrived = {r.ts.timestamp(): r.received_at.timestamp() for r in rows if r.received_at is not None}
    now = datetime.now(UTC).timestamp()
    unsettled = engine.state.unsettled
    kept: list[Episode] = []
    held: list[Episode] = []
    for episode in episodes:
        if episode.kind != DATA_GAP or episode.start in announced or episode.end is None:
            kept.append(episode)
            continue
        key = repr(episode.start)
        at = unsettled.get(key, arrived.get(episode.end, now))
        if now - at < _gap_settle_s:
            unsettled[key] = at
            held.append(episode)
        else:
            unsettled.pop(key, None)
            kept.append(episode)
    engine.state.finished = held + engine.state.finished
    return kept


async def evaluate_shipment(pool: Pool, shipment_id: str) -> Evaluation | None:
    """Fold the leg's new readings (all of them after a backlog) and reconcile its alerts. None when the
    shipment does not exist or there was nothing to do."""
    async with pool.acquire() as conn, conn.transaction():
        outcomes = await _evaluate_legs(conn, [shipment_id])
    return outcomes[0] if outcomes else None


async def evaluate_many(pool: Pool, shipment_ids: Iterable[str], chunk: int = 500) -> list[Evaluation]:
    """Legs in chunks, one transaction each. A chunk that fails is retried leg by leg, so one leg that
    cannot be evaluated does not hold the others back; its marks stay for the periodic sweep."""
    ids = sorted(set(shipment_ids))
    done: list[Evaluation] = []
    for i in range(0, len(ids), chunk):
        part = ids[i : i + chunk]
        try:
            async with pool.acquire() as conn, conn.transaction():
                done += await _evaluate_legs(conn, part)
            continue
        except Exception:
            if len(part) == 1:
                log.exception(
                    "excursion evaluation failed; the periodic sweep retries", extra={"shipment": part[0]}
                )
                continue
        for shipment_id in part:
            try:
                outcome = await evaluate_shipment(pool, shipment_id)
            except Exception:
                log.exception(
                    "excursion evaluation failed; the periodic sweep retries", extra={"shipment": shipment_id}
                )
                continue
            if outcome is not None:
                done.append(outcome)
    return done


async def evaluate_after_ingest(pool: Pool, shipment_ids: set[str], logger_ids: set[str]) -> None:
    """Call right after an ingest commit. Evaluates the named legs and every leg with unfolded readings
    of the named loggers, and ends `logger_silent` alerts of loggers whose data came back. Never raises:
    the readings are committed whatever happens here, and the periodic sweep finds what was left."""
    try:
        targets = set(shipment_ids)
        if logger_ids:
            async with pool.acquire() as conn:
                targets.update(await repo.dirty_shipments(conn, sorted(logger_ids)))
        await evaluate_many(pool, targets)
        if logger_ids:
            await end_silences(pool, sorted(logger_ids))
    except Exception:
        log.exception("evaluation after ingest failed; the periodic sweep retries")


async def sweep(pool: Pool) -> list[Evaluation]:
    """Legs with unfolded readings (an evaluation that never ran or failed), and received legs whose
    episodes are still open."""
    async with pool.acquire() as conn:
        targets = set(await repo.dirty_shipments(conn, None))
        targets.update(await repo.received_with_ongoing(conn, _KINDS))
    return await evaluate_many(pool, targets)


SILENT = "logger_silent"


async def end_silences(pool: Pool, logger_ids: list[str] | None) -> int:
    """Resolve `logger_silent` alerts whose logger sent a reading newer than the silence began, or whose
    leg was received (the logger's data no longer matters to it). `logger_ids` None: every such alert."""
    ended = 0
    async with pool.acquire() as conn, conn.transaction():
        for alert in await repo.open_of_kind(conn, SILENT, logger_ids):
            if alert.received_at is not None:
                at = alert.received_at
            elif alert.last_data is not None and alert.last_data > alert.started_at:
                at = ledger.now()
            else:
                continue
            await repo.resolve(conn, alert.id, at)
            await ledger.announce(
                conn,
                "alert",
                alert.sites,
                alert.coi,
                {
                    "id": alert.id,
                    "event": "resolved",
                    "alert_kind": SILENT,
                    "status": "resolved",
                    "shipment_id": alert.shipment_id,
                    "logger_id": alert.logger_id,
                },
            )
            ended += 1
    return ended


# Temperature profiles themselves (versions, owners, approval): backend/services/profiles.py.


# -- temperature summaries --------------------------------------------------------------------------


class DayMinutes(msgspec.Struct, frozen=True):
    day: str
    minutes_beyond: dict[str, float]


class DataGap(msgspec.Struct, frozen=True):
    """No data from `start` to `end` (issue 20, finding 3): neither in nor out of range."""

    start: datetime
    end: datetime
    minutes: float
    text: str


class ShipmentTemperature(msgspec.Struct, frozen=True):
    shipment_id: str
    coi: str
    logger_id: str | None
    profile: str
    status: str
    limits: dict[str, float]
    readings: int
    first: datetime | None
    last: datetime | None
    min_c: float | None
    max_c: float | None
    mean_c: float | None
    # USP <1079.2> over the leg; None where the profile defines no MKT (cryogenic).
    mkt_c: float | None
    minutes_beyond: dict[str, float]
    daily: list[DayMinutes]
    alerts: list[AlertRow]
    # Minutes beyond and MKT cover the covered time only; this much had no data.
    uncovered_minutes: float = 0.0
    gaps: list[DataGap] = msgspec.field(default_factory=list)


class CaseTemperature(msgspec.Struct, frozen=True):
    coi: str
    shipments: list[ShipmentTemperature]
    open_alerts: int
    minutes_beyond: dict[str, float]


async def _shipment_temperature(pool: Pool, shipment: ShipmentRow) -> ShipmentTemperature:
    async with pool.acquire() as conn:
        series = await repo.leg_series(conn, shipment.id)
        alert_rows = await alerts.list_for(conn, None, None, None, shipment.id, 1000)
        interval = await repo.sample_interval(conn, shipment.logger_id)
        zone = await repo.site_time_zone(conn, shipment.from_site)
    rules = rules_of(shipment.profile)
    engine = _engine(rules, shipment.planned_arrival, interval, zone)
    engine.feed(Reading(r.ts.timestamp(), r.temp_c, r.battery_pct, r.lid_open) for r in series)
    definition = rules.definition
    summary = summarise(
        [(r.ts, r.temp_c) for r in series],
        definition.low_c,
        definition.high_c,
        definition.mkt_hours is not None,
        gap_starts=[start for start, _end in engine.state.gaps],
    )
    gaps = [
        DataGap(
            _when(start),
            _when(end),
            round((end - start) / 60, 2),
            f"no data from {_when(start).isoformat(timespec='minutes')} "
            f"to {_when(end).isoformat(timespec='minutes')}",
        )
        for start, end in engine.state.gaps
    ]
    return ShipmentTemperature(
        shipment_id=shipment.id,
        coi=shipment.coi,
        logger_id=shipment.logger_id,
        profile=f"{shipment.profile_code} v{shipment.profile_version}",
        status=shipment.status,
        limits=rules.limits,
        readings=summary.readings,
        first=summary.first,
        last=summary.last,
        min_c=summary.min_c,
        max_c=summary.max_c,
        mean_c=summary.mean_c,
        mkt_c=summary.mkt_c,
        minutes_beyond={k: round(v, 2) for k, v in engine.minutes_beyond().items()},
        daily=[
            DayMinutes(day, {k: round(v, 2) for k, v in limits.items()})
            for day, limits in engine.daily_minutes().items()
        ],
        alerts=sorted(alert_rows, key=lambda a: a.started_at),
        uncovered_minutes=round(summary.uncovered_minutes, 2),
        gaps=gaps,
    )


async def shipment_temperature(pool: Pool, principal: Principal, shipment_id: str) -> ShipmentTemperature:
    return await _shipment_temperature(pool, await get_shipment(pool, principal, shipment_id))


async def case_temperature(pool: Pool, principal: Principal, coi: str) -> CaseTemperature:
    case = await get_case(pool, principal, coi)
    allowed = site_filter(principal)
    async with pool.acquire() as conn:
        legs = await shipments.of_case(conn, case.coi)
    visible = [s for s in legs if allowed is None or set(allowed) & {s.from_site, s.to_site}]
    summaries = [await _shipment_temperature(pool, s) for s in visible]
    totals: dict[str, float] = {}
    for summary in summaries:
        for limit, minutes in summary.minutes_beyond.items():
            totals[limit] = round(totals.get(limit, 0.0) + minutes, 2)
    open_count = sum(1 for s in summaries for a in s.alerts if a.status in alarm_states.NEEDS_ATTENTION)
    return CaseTemperature(case.coi, summaries, open_count, totals)
