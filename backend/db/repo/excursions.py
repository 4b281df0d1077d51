"""The excursion engine's tables: leg state, readings still to fold, and the alerts the engine and the
periodic checks own (temperature, signals, logger silent, shipment late)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from backend.services import archive, archive_files

if TYPE_CHECKING:
    from backend.db.types import Conn


class Leg(msgspec.Struct, frozen=True):
    shipment_id: str
    coi: str
    from_site: str
    to_site: str
    logger_id: str | None
    profile_code: str
    profile_version: int
    profile: Any
    planned_arrival: datetime
    received_at: datetime | None
    through_ts: datetime | None
    readings: int
    state: bytes | None
    # The logger's declared sampling interval (migration 0016); None: learned from the readings.
    sample_interval_s: int | None = None
    # The sending site's time zone: its calendar days, unless the profile names a zone.
    site_time_zone: str = "UTC"


class LegReading(msgspec.Struct, frozen=True, array_like=True):
    ts: datetime
    temp_c: float
    battery_pct: int | None
    lid_open: bool | None
    # When the bridge received it: a gap notice waits for the gap to settle after this.
    received_at: datetime | None = None


class EngineAlert(msgspec.Struct, frozen=True):
    id: int
    kind: str
    status: str
    severity: str
    started_at: datetime
    ended_at: datetime | None
    peak_value: float | None
    minutes_beyond: float | None
    sites: list[str]
    withdrawn: bool


class NewAlert(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    severity: str
    status: str
    title: str
    detail: str
    condition_key: str
    sites: list[str]
    coi: str | None
    shipment_id: str | None
    logger_id: str | None
    started_at: datetime
    ended_at: datetime | None
    fired_at: datetime
    escalated_at: datetime | None = None
    peak_value: float | None = None
    minutes_beyond: float | None = None
    rule: Any = None


_LEGS = """
SELECT s.id AS shipment_id, s.coi, s.from_site, s.to_site, s.logger_id, s.profile_code, s.profile_version,
       s.profile, s.planned_arrival, s.received_at, e.through_ts, e.readings, e.state,
       (SELECT l.sample_interval_s FROM loggers l WHERE l.id = s.logger_id) AS sample_interval_s,
       (SELECT t.time_zone FROM sites t WHERE t.code = s.from_site) AS site_time_zone
FROM excursion_state e JOIN shipments s ON s.id = e.shipment_id
WHERE e.shipment_id = ANY($1::text[])
ORDER BY e.shipment_id
FOR NO KEY UPDATE OF e
"""


async def lock_legs(conn: Conn, shipment_ids: list[str]) -> list[Leg]:
    """The legs and their engine state, locked until the transaction ends: one evaluation per leg at a
    time, across replicas. Locked in id order, so two evaluators of overlapping sets cannot deadlock."""
    rows = await conn.fetch(_LEGS, shipment_ids)
    if len(rows) < len(shipment_ids):
        await conn.execute(
            """INSERT INTO excursion_state (shipment_id) SELECT id FROM shipments WHERE id = ANY($1::text[])
               ORDER BY id ON CONFLICT DO NOTHING""",
            shipment_ids,
        )
        rows = await conn.fetch(_LEGS, shipment_ids)
    return [Leg(**r) for r in rows]


# One statement, so the marks taken and the readings read share one snapshot: a reading committed in
# between cannot be read without its mark being taken too. `dirty_from` at or before `through_ts` means a
# backlog landed in the past (or the leg's window moved): then every reading of the leg comes back and the
# engine starts over. A leg's readings are its logger's inside the leg's window (migration 0023), read
# through the (logger_id, ts) index; `OFFSET 0` keeps the subquery per leg (flattened into a hash join,
# PostgreSQL scanned every stored reading on each evaluation, found by `make soak`).
_TAKE = """
WITH taken AS (DELETE FROM excursion_dirty WHERE shipment_id = ANY($1::text[]) RETURNING shipment_id, from_ts),
lowest AS (SELECT shipment_id, min(from_ts) AS from_ts FROM taken GROUP BY shipment_id),
legs AS (SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS u(shipment_id, through_ts))
SELECT l.shipment_id, lo.from_ts AS dirty_from, r.ts, r.temp_c, r.battery_pct, r.lid_open, r.received_at
FROM legs l
JOIN shipments s ON s.id = l.shipment_id
LEFT JOIN lowest lo ON lo.shipment_id = l.shipment_id
LEFT JOIN LATERAL (
    SELECT r.ts, r.temp_c::numeric::float8 AS temp_c, r.battery_pct, r.lid_open, r.received_at
    FROM readings r
    WHERE r.logger_id = s.logger_id AND r.ts >= s.leg_from AND (s.leg_until IS NULL OR r.ts < s.leg_until)
      AND r.ts > CASE WHEN l.through_ts IS NULL OR lo.from_ts <= l.through_ts THEN '-infinity'::timestamptz
                      ELSE l.through_ts END
    OFFSET 0
) r ON true
ORDER BY l.shipment_id, r.ts
"""


async def take_readings(
    conn: Conn, legs: list[tuple[str, datetime | None]]
) -> dict[str, tuple[datetime | None, list[LegReading]]]:
    """Per leg: the earliest unfolded mark, and the readings to fold (all of them after a backlog)."""
    rows = await conn.fetch(_TAKE, [leg for leg, _ in legs], [through for _, through in legs])
    taken: dict[str, tuple[datetime | None, list[LegReading]]] = {}
    for r in rows:
        entry = taken.setdefault(r["shipment_id"], (r["dirty_from"], []))
        if r["ts"] is not None:
            entry[1].append(
                LegReading(r["ts"], r["temp_c"], r["battery_pct"], r["lid_open"], r["received_at"])
            )
    return taken


class SavedState(msgspec.Struct, frozen=True):
    shipment_id: str
    through_ts: datetime | None
    readings: int
    state: bytes
    full: bool


async def save_states(conn: Conn, saved: list[SavedState]) -> None:
    await conn.execute(
        """UPDATE excursion_state e
              SET through_ts = u.through_ts, readings = u.readings, state = u.state, evaluated_at = now(),
                  runs = e.runs + 1, full_runs = e.full_runs + u.is_full::int
             FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::bytea[], $5::bool[])
                  AS u(shipment_id, through_ts, readings, state, is_full)
            WHERE e.shipment_id = u.shipment_id""",
        [s.shipment_id for s in saved],
        [s.through_ts for s in saved],
        [s.readings for s in saved],
        [s.state for s in saved],
        [s.full for s in saved],
    )


async def mark_again(conn: Conn, legs: list[tuple[str, str, datetime]]) -> None:
    """Marks (shipment, logger, from) that make the periodic sweep evaluate these legs again without a
    new reading (`from` after the last folded reading: nothing is recomputed)."""
    await conn.execute(
        """INSERT INTO excursion_dirty (shipment_id, logger_id, from_ts)
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])""",
        [leg[0] for leg in legs],
        [leg[1] for leg in legs],
        [leg[2] for leg in legs],
    )


async def mark_logger_leg(conn: Conn, logger_id: str) -> None:
    """The logger's leg under way is evaluated again from its first reading (its interval changed)."""
    await conn.execute(
        """INSERT INTO excursion_dirty (shipment_id, logger_id, from_ts)
           SELECT id, logger_id, 'epoch'::timestamptz FROM shipments
           WHERE logger_id = $1 AND leg_from IS NOT NULL AND leg_until IS NULL""",
        logger_id,
    )


async def dirty_shipments(conn: Conn, logger_ids: list[str] | None) -> list[str]:
    """Legs with readings still to fold: of these loggers, or (None) of all."""
    rows = await conn.fetch(
        """SELECT DISTINCT shipment_id FROM excursion_dirty
           WHERE $1::text[] IS NULL OR logger_id = ANY($1) ORDER BY shipment_id""",
        logger_ids,
    )
    return [r["shipment_id"] for r in rows]


async def received_with_ongoing(conn: Conn, kinds: list[str]) -> list[str]:
    """Received legs whose engine alerts are still open: their episodes end with the leg."""
    rows = await conn.fetch(
        """SELECT DISTINCT a.shipment_id FROM alerts a JOIN shipments s ON s.id = a.shipment_id
           WHERE a.kind = ANY($1) AND a.status IN ('open', 'acknowledged') AND s.received_at IS NOT NULL""",
        kinds,
    )
    return [r["shipment_id"] for r in rows]


async def engine_alerts(
    conn: Conn, shipment_ids: list[str], kinds: list[str]
) -> dict[str, list[EngineAlert]]:
    rows = await conn.fetch(
        """SELECT shipment_id, id, kind, status, severity, started_at, ended_at, peak_value, minutes_beyond,
                  sites, withdrawn_at IS NOT NULL AS withdrawn
           FROM alerts WHERE shipment_id = ANY($1::text[]) AND kind = ANY($2) ORDER BY started_at, id""",
        shipment_ids,
        kinds,
    )
    found: dict[str, list[EngineAlert]] = {}
    for r in rows:
        values = dict(r)
        found.setdefault(values.pop("shipment_id"), []).append(EngineAlert(**values))
    return found


async def insert_alert(conn: Conn, alert: NewAlert) -> int | None:
    """The new alert's id; None when its condition already has an open alert."""
    value = await conn.fetchval(
        """INSERT INTO alerts (kind, severity, status, title, detail, condition_key, sites, coi, shipment_id,
                               logger_id, started_at, ended_at, fired_at, escalated_at, peak_value,
                               minutes_beyond, rule)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
           ON CONFLICT (condition_key) WHERE status IN ('open', 'acknowledged') DO NOTHING
           RETURNING id""",
        alert.kind,
        alert.severity,
        alert.status,
        alert.title,
        alert.detail,
        alert.condition_key,
        alert.sites,
        alert.coi,
        alert.shipment_id,
        alert.logger_id,
        alert.started_at,
        alert.ended_at,
        alert.fired_at,
        alert.escalated_at,
        alert.peak_value,
        alert.minutes_beyond,
        alert.rule or {},
    )
    return int(value) if value is not None else None


async def update_alert(
    conn: Conn,
    alert_id: int,
    *,
    severity: str,
    detail: str,
    started_at: datetime,
    ended_at: datetime | None,
    escalated_at: datetime | None,
    peak_value: float | None,
    minutes_beyond: float,
    rule: Any,
    cleared_status: str | None,
    reopen: bool,
) -> None:
    """`reopen`: an escalation asks for a new acknowledgement; `cleared_status`: the episode ended and
    the alert takes this status (resolved, or cleared_unacknowledged when a critical alert latches). A
    backlog may move the episode's start past when the alert fired on partial data: the alert cannot
    have fired before its excursion began, so `fired_at` moves with it (issue 20, finding 11)."""
    await conn.execute(
        """UPDATE alerts SET severity = $2, detail = $3, started_at = $4,
                  ended_at = CASE WHEN $5::timestamptz IS NOT NULL THEN $5 ELSE ended_at END,
                  fired_at = greatest(fired_at, $4),
                  escalated_at = coalesce($6, escalated_at), peak_value = $7, minutes_beyond = $8, rule = $9,
                  status = CASE WHEN status = 'closed' THEN status
                                WHEN $10::text IS NOT NULL THEN $10 WHEN $11 THEN 'open' ELSE status END
           WHERE id = $1""",
        alert_id,
        severity,
        detail,
        started_at,
        ended_at,
        escalated_at,
        peak_value,
        minutes_beyond,
        rule,
        cleared_status,
        reopen,
    )


WITHDRAWN = "withdrawn automatically: the complete readings do not show this excursion"


async def withdraw(conn: Conn, alert_id: int) -> None:
    await conn.execute(
        """UPDATE alerts SET status = 'closed', withdrawn_at = now(), closed_at = now(), close_reason = $2,
                  ended_at = coalesce(ended_at, greatest(now(), started_at)),
                  fired_at = greatest(fired_at, started_at)
           WHERE id = $1 AND withdrawn_at IS NULL""",
        alert_id,
        WITHDRAWN,
    )


async def resolve(conn: Conn, alert_id: int, ended_at: datetime) -> None:
    await conn.execute(
        """UPDATE alerts SET status = 'resolved', ended_at = $2
           WHERE id = $1 AND status IN ('open', 'acknowledged')""",
        alert_id,
        ended_at,
    )


# -- temperature summaries (profiles themselves: backend/db/repo/profiles.py) ---------------------------


async def site_time_zone(conn: Conn, site: str) -> str:
    value = await conn.fetchval("SELECT time_zone FROM sites WHERE code = $1", site)
    return str(value) if value else "UTC"


async def sample_interval(conn: Conn, logger_id: str | None) -> int | None:
    if logger_id is None:
        return None
    value = await conn.fetchval("SELECT sample_interval_s FROM loggers WHERE id = $1", logger_id)
    return int(value) if value is not None else None


async def leg_series(conn: Conn, shipment_id: str) -> list[LegReading]:
    rows = await conn.fetch(
        """SELECT ts, temp_c::numeric::float8 AS temp_c, battery_pct, lid_open FROM leg_readings($1)
           ORDER BY ts""",
        shipment_id,
    )
    found = [LegReading(r["ts"], r["temp_c"], r["battery_pct"], r["lid_open"]) for r in rows]
    # Months archived out of the database are read from their files (issue 26).
    kept = await archive.leg_readings(conn, shipment_id)
    return archive.merged(
        found,
        [LegReading(r.ts, archive_files.as_numeric(r.temp_c), r.battery_pct, r.lid_open) for r in kept],
    )
