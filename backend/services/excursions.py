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

from backend.db.repo import excursions as repo
from backend.db.repo import monitoring as checks
from backend.db.repo.excursions import EngineAlert, Leg, LegReading
from backend.db.types import Conn, Pool
from backend.domain.errors import InvalidInput
from backend.domain.excursions import (
    DATA_GAP,
    DEFAULT_GAP_FACTOR,
    ENGINE_KINDS,
    Engine,
    Episode,
    ExistingAlert,
    Reading,
    RuleSet,
    dump_state,
    load_state,
    parse_definition,
    plan,
    rules_for,
)
from backend.domain.excursions.gaps import find_gaps
from backend.services import chain as chains
from backend.services import excursion_alerts, outbox_events
from backend.services.excursion_alerts import when as _when
from backend.services.excursion_alerts import when_or_none as _dt

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


def engine_for(
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
    engine = engine_for(rules, leg.planned_arrival, leg.sample_interval_s, leg.site_time_zone, state)
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
            changes = await excursion_alerts.apply(conn, leg, engine.rules, actions, mine)
            outcome = Evaluation(
                leg.shipment_id, count, full, changes.opened, changes.escalated, changes.resolved
            )
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
        for alert in await checks.open_of_kind(conn, SILENT, logger_ids):
            if alert.received_at is not None:
                at = alert.received_at
            elif alert.last_data is not None and alert.last_data > alert.started_at:
                at = chains.now()
            else:
                continue
            await repo.resolve(conn, alert.id, at)
            await outbox_events.announce(
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


# Temperature profiles themselves (versions, owners, approval): backend/services/profiles.py; the alerts
# the engine's plan opens, updates and retires: backend/services/excursion_alerts.py; temperature
# summaries of a leg or a case: backend/services/temperature_summaries.py.
