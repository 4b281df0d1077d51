"""Milestones: planned from the product's lead times, actual from the custody record (the same instants
the timeline shows, never typed), and a predecessor late beyond the slack raising a warning alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backend.services.planning import bookings, milestones
from backend.services.planning.milestones import LeadTimes, RecordedStep
from tests.integration.journey import accept_receipt
from tests.integration.planning.planning_support import day_ahead, ordered_case, planned_world, slots

LEAD = LeadTimes(
    code="car-t",
    name="CAR-T",
    ship_after_collection_h=2,
    transit_in_h=6,
    start_after_arrival_h=16,
    manufacturing_days=14,
    ship_after_release_h=48,
    transit_out_h=24,
    infusion_after_receipt_h=72,
    slack_h=12,
)
T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


def test_planned_dates_follow_the_lead_times():
    plan = milestones.planned(T0, LEAD)
    assert list(plan) == list(milestones.MILESTONES)
    assert plan["shipment_to_manufacturing"] == T0 + timedelta(hours=2)
    assert plan["manufacturing_start"] == T0 + timedelta(hours=24)
    assert plan["release"] == T0 + timedelta(days=15)
    assert plan["return_shipment"] == T0 + timedelta(days=17)
    assert plan["receipt"] == T0 + timedelta(days=18)
    assert plan["infusion"] == T0 + timedelta(days=21)
    # The run holds its suite from the start day (at the site, in its zone) for the manufacturing days.
    start, end = milestones.run_days(T0, LEAD, "Europe/Zurich")
    assert (start.isoformat(), end.isoformat()) == ("2026-03-03", "2026-03-17")


def test_actual_dates_come_from_the_first_step_of_each_kind():
    h = timedelta(hours=1)
    steps = [
        RecordedStep("label", T0 + h, ["C-APH-01"]),
        RecordedStep("label", T0 + 30 * h, ["C-PRC-01"]),  # the product bag's label is no collection
        RecordedStep("pickup", T0 + 3 * h, [], "APH", "MFG"),
        RecordedStep("receipt", T0 + 9 * h, [], "APH", "MFG", "quarantine"),
        RecordedStep("receipt", T0 + 10 * h, [], "APH", "MFG", "accept"),
        RecordedStep("release", T0 + 300 * h, ["C-PRC-01"]),
        RecordedStep("pickup", T0 + 340 * h, [], "MFG", "HOSP"),
        RecordedStep("receipt", T0 + 360 * h, [], "MFG", "HOSP", "accept"),
        RecordedStep("infuse", T0 + 400 * h, ["C-PRC-01"]),
    ]
    done = milestones.actual(reversed(steps), {"C-APH-01"}, "MFG")
    assert done == {
        "collection": T0 + h,
        "shipment_to_manufacturing": T0 + 3 * h,
        "manufacturing_start": T0 + 10 * h,
        "release": T0 + 300 * h,
        "return_shipment": T0 + 340 * h,
        "receipt": T0 + 360 * h,
        "infusion": T0 + 400 * h,
    }
    # Without an order, the first leg picked up is the one to manufacturing.
    assert milestones.actual(steps, {"C-APH-01"}, None) == done


def test_at_risk_when_the_predecessor_is_late_beyond_the_slack():
    plan = milestones.planned(T0, LEAD)
    slack = timedelta(hours=LEAD.slack_h)
    assert milestones.at_risk(plan, {}, slack, T0 + slack) == {}
    risky = milestones.at_risk(plan, {}, slack, T0 + slack + timedelta(minutes=1))
    assert list(risky) == ["shipment_to_manufacturing"]
    # Collected, but later than the slack allows: the shipment stays at risk until it happens.
    late = {"collection": T0 + slack + timedelta(hours=1)}
    assert list(milestones.at_risk(plan, late, slack, T0 + slack + timedelta(hours=2))) == [
        "shipment_to_manufacturing"
    ]
    on_time = {"collection": T0 + timedelta(hours=3)}
    assert milestones.at_risk(plan, on_time, slack, T0 + timedelta(hours=13)) == {}
    states = {v.milestone: v.state for v in milestones.view(plan, late, slack, T0 + timedelta(hours=20))}
    assert states["collection"] == "done_late"
    assert states["shipment_to_manufacturing"] == "at_risk"
    assert states["infusion"] == "pending"


async def _booked(world: Any) -> tuple[str, dict[str, Any]]:
    (slot,) = await slots(world, day_ahead(8), "08:00")
    coi = await ordered_case(world)
    await world.ok("coord", "POST", f"/api/v1/cases/{coi}/booking", 201, json={"slot_id": slot})
    return coi, await world.ok("coord", "GET", f"/api/v1/cases/{coi}/plan")


async def test_the_plan_shows_the_custody_records_instants(client):
    world = await planned_world(client)
    coi, plan = await _booked(world)
    planned = {m["milestone"]: m["planned_at"] for m in plan["milestones"]}
    assert all(planned.values())
    assert not any(m["actual_at"] for m in plan["milestones"])
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    ship = await world.shipment("coord", coi, "USZ-APH", "CTA", [aph])
    await world.scan_ok("nurse", "pack", "USZ-APH", ship, aph)
    await world.scan_ok("courier1", "pickup", "USZ-APH", ship)
    await world.scan_ok("mfg", "receive", "CTA", ship)
    await world.scan_ok("mfg", "receive", "CTA", ship, aph)
    await accept_receipt(world, "mfg", ship)
    events = (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["events"]

    def recorded(action: str) -> datetime:
        at = next(e["server_time"] for e in events if e["action"] == action and e["outcome"] == "accepted")
        return datetime.fromisoformat(at)

    plan = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/plan")
    actual = {m["milestone"]: m["actual_at"] for m in plan["milestones"]}
    assert datetime.fromisoformat(actual["collection"]) == recorded("label")
    assert datetime.fromisoformat(actual["shipment_to_manufacturing"]) == recorded("pickup")
    assert datetime.fromisoformat(actual["manufacturing_start"]) == recorded("receipt")
    assert actual["release"] is None
    # Collected days ahead of the plan: done, not late.
    states = {m["milestone"]: m["state"] for m in plan["milestones"]}
    assert states["collection"] == "done"


async def test_a_late_collection_raises_the_at_risk_alert_and_the_record_clears_it(client, pool):
    world = await planned_world(client)
    coi, plan = await _booked(world)
    collection = datetime.fromisoformat(plan["milestones"][0]["planned_at"])
    slack = timedelta(hours=plan["slack_hours"])
    assert await bookings.check_milestones(pool, collection + slack - timedelta(minutes=1)) == 0
    assert await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": coi}) == []
    assert await bookings.check_milestones(pool, collection + slack + timedelta(minutes=1)) == 1
    alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": coi})
    assert [(a["kind"], a["severity"], a["status"]) for a in alerts] == [
        ("milestone_at_risk", "warning", "open")
    ]
    assert "Shipment to manufacturing" in alerts[0]["title"]
    assert "collection was due" in alerts[0]["detail"]
    # The manufacturing site and the collection site see it too.
    assert [a["id"] for a in await world.ok("mfg", "GET", "/api/v1/alerts", params={"coi": coi})] == [
        alerts[0]["id"]
    ]
    # A second pass opens no second alert for the same condition.
    await bookings.check_milestones(pool, collection + slack + timedelta(minutes=2))
    assert len(await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": coi})) == 1
    # The bag is labelled (now, well before the planned collection): the risk is gone.
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    await world.scan_ok("nurse", "label", "USZ-APH", aph)
    assert await bookings.check_milestones(pool, collection + slack + timedelta(minutes=3)) == 0
    alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": coi})
    assert [a["status"] for a in alerts] == ["resolved"]
