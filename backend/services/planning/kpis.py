"""Key figures computed from the record: vein-to-vein time (collection to infusion), manufacturing
turnaround (start to release), each leg's duration against plan, and per shipping lane the on-time rate,
excursions and refusals. Per month (in the site's time zone) and per site. Only records the caller may
see are counted. `compute` is pure; `kpis` gathers its facts."""

from __future__ import annotations

import csv
import io
import itertools
import statistics
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from backend.db.repo import cases as cases_repo
from backend.db.repo import planning as repo
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.services.planning import milestones
from backend.services.planning.milestones import MILESTONES
from backend.services.visibility import site_filter

# Alert kinds that are temperature excursions of a shipment (not device or data problems).
EXCURSION_KINDS = ("temperature_high", "temperature_low", "rate_of_change", "mkt_high")


class CaseFacts(msgspec.Struct, frozen=True, kw_only=True):
    coi: str
    treatment_site: str
    manufacturing_site: str | None
    treatment_zone: str
    manufacturing_zone: str
    actual: dict[str, datetime]
    planned: dict[str, datetime]


class LegFacts(msgspec.Struct, frozen=True, kw_only=True):
    shipment_id: str
    from_site: str
    to_site: str
    planned_arrival: datetime
    arrived_at: datetime | None
    excursions: int
    refusals: int


class Spread(msgspec.Struct, frozen=True, kw_only=True):
    cases: int
    median_days: float | None
    min_days: float | None
    max_days: float | None


class Grouped(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    month: str | None = None
    site: str | None = None
    cases: int
    median_days: float | None
    min_days: float | None
    max_days: float | None


class LegFigure(msgspec.Struct, frozen=True, kw_only=True):
    leg: str
    label: str
    cases: int
    planned_median_hours: float | None
    actual_median_hours: float | None
    late: int


class LaneFigure(msgspec.Struct, frozen=True, kw_only=True):
    lane: str
    from_site: str
    to_site: str
    shipments: int
    arrived: int
    on_time: int
    on_time_rate: float | None
    excursions: int
    refusals: int


class SiteFigure(msgspec.Struct, frozen=True, kw_only=True):
    site: str
    shipments: int
    excursions: int
    refusals: int


class Kpis(msgspec.Struct, frozen=True, kw_only=True):
    generated_at: datetime
    site: str | None
    vein_to_vein: Spread
    vein_to_vein_by_month: list[Grouped]
    vein_to_vein_by_site: list[Grouped]
    turnaround: Spread
    turnaround_by_month: list[Grouped]
    turnaround_by_site: list[Grouped]
    legs: list[LegFigure]
    lanes: list[LaneFigure]
    sites: list[SiteFigure]


def _days(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 86400


def _spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread(cases=0, median_days=None, min_days=None, max_days=None)
    return Spread(
        cases=len(values),
        median_days=round(statistics.median(values), 2),
        min_days=round(min(values), 2),
        max_days=round(max(values), 2),
    )


def _grouped(samples: Iterable[tuple[str, float]], by: str) -> list[Grouped]:
    groups: dict[str, list[float]] = {}
    for key, value in samples:
        groups.setdefault(key, []).append(value)
    out = []
    for key in sorted(groups):
        s = _spread(groups[key])
        out.append(
            Grouped(
                month=key if by == "month" else None,
                site=key if by == "site" else None,
                cases=s.cases,
                median_days=s.median_days,
                min_days=s.min_days,
                max_days=s.max_days,
            )
        )
    return out


def _month(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m")


def compute(
    facts: Sequence[CaseFacts], legs: Sequence[LegFacts], site: str | None = None, now: datetime | None = None
) -> Kpis:
    v2v = _durations(facts, milestones.COLLECTION, milestones.INFUSION)
    turn = _durations(facts, milestones.MANUFACTURING_START, milestones.RELEASE)
    return Kpis(
        generated_at=now or datetime.now(UTC),
        site=site,
        vein_to_vein=_spread([d for _, d in v2v]),
        vein_to_vein_by_month=_grouped(
            ((_month(c.actual[milestones.INFUSION], c.treatment_zone), d) for c, d in v2v), "month"
        ),
        vein_to_vein_by_site=_grouped(((c.treatment_site, d) for c, d in v2v), "site"),
        turnaround=_spread([d for _, d in turn]),
        turnaround_by_month=_grouped(
            ((_month(c.actual[milestones.RELEASE], c.manufacturing_zone), d) for c, d in turn), "month"
        ),
        turnaround_by_site=_grouped(((c.manufacturing_site or "?", d) for c, d in turn), "site"),
        legs=[_leg_figure(facts, before, after) for before, after in itertools.pairwise(MILESTONES)],
        lanes=_lane_figures(legs),
        sites=_site_figures(legs),
    )


def _durations(facts: Sequence[CaseFacts], first: str, last: str) -> list[tuple[CaseFacts, float]]:
    """Days from milestone `first` to `last` of each case that reached both."""
    return [
        (case, _days(case.actual[first], case.actual[last]))
        for case in facts
        if {first, last} <= case.actual.keys()
    ]


def _leg_figure(facts: Sequence[CaseFacts], before: str, after: str) -> LegFigure:
    """Hours from one milestone to the next, planned against actual, over the cases that have both."""
    planned_h, actual_h, late = [], [], 0
    for case in facts:
        if {before, after} <= case.actual.keys() and {before, after} <= case.planned.keys():
            p = (case.planned[after] - case.planned[before]).total_seconds() / 3600
            d = (case.actual[after] - case.actual[before]).total_seconds() / 3600
            planned_h.append(p)
            actual_h.append(d)
            late += d > p
    return LegFigure(
        leg=f"{before}>{after}",
        label=f"{milestones.LABELS[before]} → {milestones.LABELS[after]}",
        cases=len(actual_h),
        planned_median_hours=round(statistics.median(planned_h), 1) if planned_h else None,
        actual_median_hours=round(statistics.median(actual_h), 1) if actual_h else None,
        late=late,
    )


def _lane_figures(legs: Sequence[LegFacts]) -> list[LaneFigure]:
    lanes: dict[tuple[str, str], list[LegFacts]] = {}
    for leg in legs:
        lanes.setdefault((leg.from_site, leg.to_site), []).append(leg)
    return [_lane_figure(src, dst, group) for (src, dst), group in sorted(lanes.items())]


def _lane_figure(src: str, dst: str, group: list[LegFacts]) -> LaneFigure:
    arrived = [g for g in group if g.arrived_at is not None]
    on_time = sum(1 for g in arrived if g.arrived_at is not None and g.arrived_at <= g.planned_arrival)
    return LaneFigure(
        lane=f"{src}→{dst}",
        from_site=src,
        to_site=dst,
        shipments=len(group),
        arrived=len(arrived),
        on_time=on_time,
        on_time_rate=round(on_time / len(arrived), 3) if arrived else None,
        excursions=sum(g.excursions for g in group),
        refusals=sum(g.refusals for g in group),
    )


def _site_figures(legs: Sequence[LegFacts]) -> list[SiteFigure]:
    # A leg's excursions count for the site that packed it, its refusals for the site that refused it.
    per_site: dict[str, list[int]] = {}
    for leg in legs:
        per_site.setdefault(leg.from_site, [0, 0, 0])
        per_site.setdefault(leg.to_site, [0, 0, 0])
        per_site[leg.from_site][0] += 1
        per_site[leg.from_site][1] += leg.excursions
        per_site[leg.to_site][2] += leg.refusals
    return [
        SiteFigure(site=s, shipments=v[0], excursions=v[1], refusals=v[2])
        for s, v in sorted(per_site.items())
    ]


async def kpis(pool: Pool, principal: Principal, site: str | None = None) -> Kpis:
    """Every visible case and leg; `site` narrows to the cases treated or made there and the legs that
    leave or reach it."""
    visible = site_filter(principal)
    async with pool.acquire() as conn:
        zones = {r["code"]: r["time_zone"] for r in await conn.fetch("SELECT code, time_zone FROM sites")}
        rows = await cases_repo.list_cases(conn, visible, 100_000)
        cois = [c.coi for c in rows]
        orders = {
            r["coi"]: r
            for r in await conn.fetch(
                """SELECT DISTINCT ON (o.coi) o.coi, o.manufacturing_site, b.id AS booking_id
                   FROM treatment_orders o
                   LEFT JOIN bookings b ON b.order_id = o.id AND b.status = 'active'
                   WHERE o.coi = ANY($1::text[]) AND o.status = 'accepted' ORDER BY o.coi, o.id DESC""",
                cois,
            )
        }
        plans: dict[str, dict[str, datetime]] = {}
        for coi, order in orders.items():
            if order["booking_id"] is not None:
                plans[coi] = await repo.milestones(conn, order["booking_id"])
        steps: dict[str, list[Any]] = {}
        for row in await repo.custody_steps(conn, cois):
            steps.setdefault(row["coi"], []).append(row)
        aph = await repo.apheresis_units(conn, cois)
        legs = await conn.fetch(
            # Arrival is the first accepted receive or receipt scan of the leg in the record; the leg's own
            # columns only where the record has none.
            """SELECT s.id, s.from_site, s.to_site, s.planned_arrival,
                      coalesce((SELECT min(e.server_time) FROM custody_events e WHERE e.shipment_id = s.id
                                   AND e.outcome = 'accepted' AND e.action IN ('receive', 'receipt')),
                               s.arrived_at, s.received_at) AS arrived_at,
                      (SELECT count(*) FROM alerts a WHERE a.shipment_id = s.id
                          AND a.kind = ANY($2::text[]))::int AS excursions,
                      (SELECT count(*) FROM custody_events e WHERE e.shipment_id = s.id
                          AND (e.outcome = 'refused'
                               OR (e.action = 'receipt' AND e.data->>'decision' = 'quarantine')))::int
                          AS refusals
               FROM shipments s
               WHERE $1::text[] IS NULL OR s.from_site = ANY($1) OR s.to_site = ANY($1)""",
            visible,
            list(EXCURSION_KINDS),
        )
    facts = [
        fact
        for case in rows
        if _concerns(
            site,
            (
                fact := _case_facts(case, orders.get(case.coi), steps.get(case.coi, []), aph, plans, zones)
            ).treatment_site,
            fact.manufacturing_site,
        )
    ]
    leg_facts = [
        LegFacts(
            shipment_id=r["id"],
            from_site=r["from_site"],
            to_site=r["to_site"],
            planned_arrival=r["planned_arrival"],
            arrived_at=r["arrived_at"],
            excursions=r["excursions"],
            refusals=r["refusals"],
        )
        for r in legs
        if _concerns(site, r["from_site"], r["to_site"])
    ]
    return compute(facts, leg_facts, site)


def _concerns(site: str | None, *sites: str | None) -> bool:
    """Whether a figure narrowed to `site` (None: every visible site) counts a case or leg of `sites`."""
    return site is None or site in sites


def _case_facts(
    case: cases_repo.CaseRow,
    order: Any,
    steps: list[Any],
    apheresis: dict[str, set[str]],
    plans: dict[str, dict[str, datetime]],
    zones: dict[str, str],
) -> CaseFacts:
    done = milestones.actual(
        milestones.steps_of(steps),
        apheresis.get(case.coi, set()),
        order["manufacturing_site"] if order else None,
    )
    # Without an accepted order, the site the case's first pick-up went to.
    mfg = order["manufacturing_site"] if order else _first_destination(steps)
    return CaseFacts(
        coi=case.coi,
        treatment_site=case.treatment_site,
        manufacturing_site=mfg,
        treatment_zone=zones.get(case.treatment_site, "UTC"),
        manufacturing_zone=zones.get(mfg or "", "UTC"),
        actual=done,
        planned=plans.get(case.coi, {}),
    )


def _first_destination(rows: Sequence[Any]) -> str | None:
    return next((r["to_site"] for r in rows if r["action"] == "pickup" and r["to_site"]), None)


CSV_HEADER = ("section", "month", "site", "lane", "leg", "metric", "value")


def to_csv(figures: Kpis) -> str:
    """One figure per row, so a spreadsheet can pivot it any way."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)

    def spread(section: str, s: Spread | Grouped, month: str = "", site: str = "") -> None:
        for metric in ("cases", "median_days", "min_days", "max_days"):
            writer.writerow((section, month, site, "", "", metric, _cell(getattr(s, metric))))

    spread("vein_to_vein", figures.vein_to_vein)
    for g in figures.vein_to_vein_by_month:
        spread("vein_to_vein", g, month=g.month or "")
    for g in figures.vein_to_vein_by_site:
        spread("vein_to_vein", g, site=g.site or "")
    spread("turnaround", figures.turnaround)
    for g in figures.turnaround_by_month:
        spread("turnaround", g, month=g.month or "")
    for g in figures.turnaround_by_site:
        spread("turnaround", g, site=g.site or "")
    for leg in figures.legs:
        for metric in ("cases", "planned_median_hours", "actual_median_hours", "late"):
            writer.writerow(("legs", "", "", "", leg.leg, metric, _cell(getattr(leg, metric))))
    for lane in figures.lanes:
        for metric in ("shipments", "arrived", "on_time", "on_time_rate", "excursions", "refusals"):
            writer.writerow(("lanes", "", "", lane.lane, "", metric, _cell(getattr(lane, metric))))
    for s in figures.sites:
        for metric in ("shipments", "excursions", "refusals"):
            writer.writerow(("sites", "", s.site, "", "", metric, _cell(getattr(s, metric))))
    return out.getvalue()


def _cell(value: object) -> str:
    return "" if value is None else str(value)
