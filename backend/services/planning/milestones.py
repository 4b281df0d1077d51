"""Milestones of a case's plan: planned instants from the product's lead times, actual instants read
from the custody record (never typed), and which milestones are at risk. Pure: no I/O."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from backend.db.lead_times import LeadTimes as LeadTimes

COLLECTION: Final = "collection"
SHIPMENT_TO_MANUFACTURING: Final = "shipment_to_manufacturing"
MANUFACTURING_START: Final = "manufacturing_start"
RELEASE: Final = "release"
RETURN_SHIPMENT: Final = "return_shipment"
RECEIPT: Final = "receipt"
INFUSION: Final = "infusion"
MILESTONES: Final = (
    COLLECTION,
    SHIPMENT_TO_MANUFACTURING,
    MANUFACTURING_START,
    RELEASE,
    RETURN_SHIPMENT,
    RECEIPT,
    INFUSION,
)
LABELS: Final = {
    COLLECTION: "Collection",
    SHIPMENT_TO_MANUFACTURING: "Shipment to manufacturing",
    MANUFACTURING_START: "Manufacturing start",
    RELEASE: "Release",
    RETURN_SHIPMENT: "Return shipment",
    RECEIPT: "Receipt at hospital",
    INFUSION: "Infusion",
}
# Which custody step marks each milestone (docs/planning.md).
SOURCES: Final = {
    COLLECTION: "label of the apheresis bag",
    SHIPMENT_TO_MANUFACTURING: "pickup of the leg to the manufacturing site",
    MANUFACTURING_START: "accepted receipt at the manufacturing site",
    RELEASE: "QA release",
    RETURN_SHIPMENT: "pickup of the leg from the manufacturing site",
    RECEIPT: "accepted receipt of the leg from the manufacturing site",
    INFUSION: "infusion at the bedside",
}


def planned(collection: datetime, lead: LeadTimes) -> dict[str, datetime]:
    """Every milestone's planned instant, from the collection slot's start."""
    hours = timedelta(hours=1)
    shipment = collection + lead.ship_after_collection_h * hours
    start = shipment + (lead.transit_in_h + lead.start_after_arrival_h) * hours
    release = start + timedelta(days=lead.manufacturing_days)
    back = release + lead.ship_after_release_h * hours
    receipt = back + lead.transit_out_h * hours
    return {
        COLLECTION: collection,
        SHIPMENT_TO_MANUFACTURING: shipment,
        MANUFACTURING_START: start,
        RELEASE: release,
        RETURN_SHIPMENT: back,
        RECEIPT: receipt,
        INFUSION: receipt + lead.infusion_after_receipt_h * hours,
    }


def run_days(collection: datetime, lead: LeadTimes, zone: str) -> tuple[date, date]:
    """The manufacturing run's days at the site, [start, end): the suite it holds is taken for them."""
    start = planned(collection, lead)[MANUFACTURING_START].astimezone(ZoneInfo(zone)).date()
    return start, start + timedelta(days=lead.manufacturing_days)


class RecordedStep(msgspec.Struct, frozen=True):
    """One accepted custody event, with the sites of its leg when it names a shipment."""

    action: str
    at: datetime
    unit_ids: list[str]
    from_site: str | None = None
    to_site: str | None = None
    decision: str | None = None


def actual(
    steps: Iterable[RecordedStep], apheresis_units: set[str], manufacturing_site: str | None
) -> dict[str, datetime]:
    """The first recorded instant of each milestone. Without a known manufacturing site, the first leg
    picked up is taken to be the one to manufacturing."""
    found: dict[str, datetime] = {}
    mfg = manufacturing_site

    def first(name: str, at: datetime) -> None:
        found.setdefault(name, at)

    for step in sorted(steps, key=lambda s: s.at):
        if step.action == "label" and apheresis_units.intersection(step.unit_ids):
            first(COLLECTION, step.at)
        elif step.action == "pickup":
            if mfg is None and step.to_site is not None:
                mfg = step.to_site
            if step.to_site == mfg:
                first(SHIPMENT_TO_MANUFACTURING, step.at)
            elif step.from_site == mfg:
                first(RETURN_SHIPMENT, step.at)
        elif step.action == "receipt" and step.decision == "accept":
            if step.to_site == mfg:
                first(MANUFACTURING_START, step.at)
            elif step.from_site == mfg:
                first(RECEIPT, step.at)
        elif step.action == "release":
            first(RELEASE, step.at)
        elif step.action == "infuse":
            first(INFUSION, step.at)
    return found


class MilestoneView(msgspec.Struct, frozen=True, kw_only=True):
    milestone: str
    label: str
    planned_at: datetime | None
    actual_at: datetime | None
    # Actual minus planned, in hours (positive: late); None until both are known.
    delay_hours: float | None
    state: str  # done, done_late, pending, overdue, at_risk
    source: str


def at_risk(
    plan: dict[str, datetime], done: dict[str, datetime], slack: timedelta, now: datetime
) -> dict[str, str]:
    """Milestones not yet reached whose predecessor is late beyond the slack, with the reason."""
    risky: dict[str, str] = {}
    for before, milestone in itertools.pairwise(MILESTONES):
        if milestone in done or before not in plan:
            continue
        due = plan[before] + slack
        reached = done.get(before)
        if reached is None and now > due:
            risky[milestone] = f"{LABELS[before].lower()} was due {_hours(now - plan[before])} ago"
        elif reached is not None and reached > due:
            risky[milestone] = f"{LABELS[before].lower()} was {_hours(reached - plan[before])} late"
    return risky


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.1f} days"


def view(
    plan: dict[str, datetime], done: dict[str, datetime], slack: timedelta, now: datetime
) -> list[MilestoneView]:
    risky = at_risk(plan, done, slack, now)
    rows = []
    for name in MILESTONES:
        p, a = plan.get(name), done.get(name)
        delay = (a - p).total_seconds() / 3600 if p is not None and a is not None else None
        if a is not None:
            state = "done_late" if delay is not None and delay > slack.total_seconds() / 3600 else "done"
        elif name in risky:
            state = "at_risk"
        elif p is not None and now > p + slack:
            state = "overdue"
        else:
            state = "pending"
        rows.append(
            MilestoneView(
                milestone=name,
                label=LABELS[name],
                planned_at=p,
                actual_at=a,
                delay_hours=None if delay is None else round(delay, 1),
                state=state,
                source=SOURCES[name],
            )
        )
    return rows


def steps_of(rows: Sequence[Any]) -> list[RecordedStep]:
    """Custody rows (action, server_time, unit_ids, from_site, to_site, data) as steps."""
    steps = []
    for row in rows:
        data = row["data"] if isinstance(row["data"], dict) else {}
        steps.append(
            RecordedStep(
                action=row["action"],
                at=row["server_time"],
                unit_ids=list(row["unit_ids"]),
                from_site=row["from_site"],
                to_site=row["to_site"],
                decision=data.get("decision"),
            )
        )
    return steps
