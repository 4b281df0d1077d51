"""Temperature summaries of a leg or a whole case, as people read them beside the record: readings, minimum,
maximum, mean and MKT, minutes beyond each limit (over the leg and per day), data gaps and the leg's alerts.
The engine that computes minutes beyond and gaps is the one that raises the alerts."""

from __future__ import annotations

from datetime import datetime

import msgspec

from backend.db.repo import alerts, shipments
from backend.db.repo import excursions as repo
from backend.db.repo.alerts import AlertRow
from backend.db.repo.shipments import ShipmentRow
from backend.db.types import Pool
from backend.domain import alarm_states
from backend.domain.access import Principal
from backend.domain.excursions import Reading
from backend.domain.temperature import summarise
from backend.services.cases import get_case
from backend.services.excursion_alerts import when as _when
from backend.services.excursions import engine_for, rules_of
from backend.services.shipments import get_shipment
from backend.services.visibility import site_filter


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
    engine = engine_for(rules, shipment.planned_arrival, interval, zone)
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
