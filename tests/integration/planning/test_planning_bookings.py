"""Orders, bookings and capacity through the API on a real PostgreSQL: the signed order decision, the last
manufacturing run under concurrent bookings, rescheduling and cancelling that free it, and bookings
flagged when capacity is lowered."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.integration.helpers import assert_problem, make_site, make_user
from tests.integration.journey import PASSWORD
from tests.integration.planning.planning_support import (
    capacity,
    day_ahead,
    ordered_case,
    planned_world,
    slots,
)


async def test_an_accepted_order_is_a_signed_custody_event_and_opens_the_plan(client, database_url):
    world = await planned_world(client)
    coi = await ordered_case(world, accept=False)
    plan = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/plan")
    assert plan["order"]["status"] == "requested"
    assert plan["can_book"] is False
    # The manufacturing site sees the case it is asked to make before any bag of it reaches the site.
    assert (await world.ok("mfg", "GET", f"/api/v1/cases/{coi}/plan"))["can_decide"] is True
    wrong = await world.call(
        "mfg", "POST", f"/api/v1/cases/{coi}/order/decision", json={"decision": "accept", "password": "nope"}
    )
    assert_problem(wrong, 422, "signature refused")
    # Only the manufacturing site named on the order may sign its decision.
    refused = await world.call(
        "coord",
        "POST",
        f"/api/v1/cases/{coi}/order/decision",
        json={"decision": "accept", "password": PASSWORD},
    )
    assert refused.status_code == 403
    decided = await world.ok(
        "mfg",
        "POST",
        f"/api/v1/cases/{coi}/order/decision",
        201,
        json={"decision": "accept", "password": PASSWORD},
    )
    assert decided["status"] == "accepted"
    assert decided["decided_by"]
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            """SELECT e.action, e.site, s.meaning FROM custody_events e JOIN signatures s ON s.event_id = e.id
               WHERE e.id = $1""",
            decided["decision_event_id"],
        )
    finally:
        await conn.close()
    assert (row["action"], row["site"], row["meaning"]) == ("order_accepted", "CTA", "order accepted")
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True
    again = await world.call(
        "mfg",
        "POST",
        f"/api/v1/cases/{coi}/order/decision",
        json={"decision": "decline", "password": PASSWORD, "reason": "changed our mind"},
    )
    assert_problem(again, 409, "already accepted")


async def test_a_declined_order_needs_a_reason_and_allows_a_new_order(client):
    world = await planned_world(client)
    coi = await ordered_case(world, accept=False)
    no_reason = await world.call(
        "mfg",
        "POST",
        f"/api/v1/cases/{coi}/order/decision",
        json={"decision": "decline", "password": PASSWORD},
    )
    assert_problem(no_reason, 422, "needs a reason")
    await world.ok(
        "mfg",
        "POST",
        f"/api/v1/cases/{coi}/order/decision",
        201,
        json={"decision": "decline", "password": PASSWORD, "reason": "no slot for this product this quarter"},
    )
    booking = await world.call("coord", "POST", f"/api/v1/cases/{coi}/booking", json={"slot_id": 1})
    assert_problem(booking, 409, "declined")


async def test_only_one_of_concurrent_bookings_wins_the_last_run(client):
    world = await planned_world(client)
    day = day_ahead(10)
    # One run per day: every slot of the day leads to the same manufacturing start.
    ids = await slots(world, day, "07:00", "08:00", "09:00", "10:00", "11:00", "12:00")
    cases = [await ordered_case(world) for _ in ids]

    async def book(coi: str, slot_id: int) -> Any:
        return await world.call("coord", "POST", f"/api/v1/cases/{coi}/booking", json={"slot_id": slot_id})

    answers = await asyncio.gather(*(book(c, s) for c, s in zip(cases, ids, strict=True)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * (len(ids) - 1), [a.text for a in answers]
    for lost in (a for a in answers if a.status_code == 409):
        assert "run(s) of car-t" in lost.json()["detail"]


async def test_two_cases_racing_for_one_slot_get_it_once(client):
    world = await planned_world(client)
    await capacity(world, 5, ["S1", "S2", "S3"])
    (slot,) = await slots(world, day_ahead(11), "08:00")
    first, second = await ordered_case(world), await ordered_case(world)
    answers = await asyncio.gather(
        *(
            world.call("coord", "POST", f"/api/v1/cases/{coi}/booking", json={"slot_id": slot})
            for coi in (first, second)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409]
    assert "already booked" in next(a for a in answers if a.status_code == 409).json()["detail"]


async def test_cancel_and_reschedule_give_the_run_back(client):
    world = await planned_world(client)
    day, later = day_ahead(12), day_ahead(20)
    a_slot, b_slot = await slots(world, day, "08:00", "13:00")
    (c_slot,) = await slots(world, later, "08:00")
    a, b = await ordered_case(world), await ordered_case(world)
    booked = await world.ok("coord", "POST", f"/api/v1/cases/{a}/booking", 201, json={"slot_id": a_slot})
    assert booked["suite"] == "S1"
    full = await world.call("coord", "POST", f"/api/v1/cases/{b}/booking", json={"slot_id": b_slot})
    assert_problem(full, 409, "are booked")
    # The case page offers the slot, but says its run does not fit.
    offered = await world.ok("coord", "GET", f"/api/v1/cases/{b}/slots", params={"days": 30})
    choice = next(s for s in offered["slots"] if s["id"] == b_slot)
    assert choice["fits"] is False
    assert "booked" in choice["why_not"]

    cancelled = await world.ok(
        "coord", "POST", f"/api/v1/cases/{a}/booking/cancel", 201, json={"reason": "patient not fit"}
    )
    assert cancelled["status"] == "cancelled"
    await world.ok("coord", "POST", f"/api/v1/cases/{b}/booking", 201, json={"slot_id": b_slot})
    # a books again on the later day, then b moves there too: its first day's run is free again.
    await world.ok("coord", "POST", f"/api/v1/cases/{a}/booking", 201, json={"slot_id": c_slot})
    calendar = await world.ok(
        "mfg", "GET", "/api/v1/sites/CTA/calendar", params={"start": day.isoformat(), "days": 30}
    )
    starts = {d["day"]: d["runs"]["car-t"][0] for d in calendar["days"]}
    assert sum(starts.values()) == 2
    (d_slot,) = await slots(world, later, "14:00")
    moved = await world.call(
        "coord", "POST", f"/api/v1/cases/{b}/booking/reschedule", json={"slot_id": d_slot, "reason": "ward"}
    )
    # One run per day, and a already holds the later day's: the move fails and b keeps its booking.
    assert_problem(moved, 409, "are booked")
    plan = await world.ok("coord", "GET", f"/api/v1/cases/{b}/plan")
    assert plan["booking"]["slot_id"] == b_slot
    await capacity(world, 2, ["S1", "S2"])
    moved = await world.ok(
        "coord",
        "POST",
        f"/api/v1/cases/{b}/booking/reschedule",
        201,
        json={"slot_id": d_slot, "reason": "ward"},
    )
    assert moved["slot_id"] == d_slot
    # Its own run was freed before the new one was sought: S1 is free again on the later day.
    assert moved["suite"] == "S1"
    again = await world.ok(
        "coord",
        "POST",
        f"/api/v1/cases/{a}/booking/reschedule",
        201,
        json={"slot_id": a_slot, "reason": "earlier"},
    )
    assert again["slot_id"] == a_slot
    calendar = await world.ok(
        "mfg", "GET", "/api/v1/sites/CTA/calendar", params={"start": day.isoformat(), "days": 30}
    )
    booked_days = sorted(d["day"] for d in calendar["days"] if d["runs"]["car-t"][0])
    assert len(booked_days) == 2
    assert booked_days[0] < booked_days[1]


async def test_lowering_capacity_flags_the_bookings_that_no_longer_fit(client):
    world = await planned_world(client)
    await capacity(world, 2, ["S1", "S2"])
    day = day_ahead(14)
    first_slot, second_slot = await slots(world, day, "08:00", "09:00")
    first, second = await ordered_case(world), await ordered_case(world)
    await world.ok("coord", "POST", f"/api/v1/cases/{first}/booking", 201, json={"slot_id": first_slot})
    await world.ok("coord", "POST", f"/api/v1/cases/{second}/booking", 201, json={"slot_id": second_slot})
    await capacity(world, 1, ["S1", "S2"])
    kept = (await world.ok("coord", "GET", f"/api/v1/cases/{first}/plan"))["booking"]
    flagged = (await world.ok("coord", "GET", f"/api/v1/cases/{second}/plan"))["booking"]
    assert kept["flagged"] is False
    assert flagged["flagged"] is True
    assert "lowered to 1" in flagged["flag_reason"]
    alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": second})
    assert [a["kind"] for a in alerts] == ["booking_no_longer_fits"]
    calendar = await world.ok("mfg", "GET", "/api/v1/sites/CTA/calendar", params={"start": day.isoformat()})
    assert [f["coi"] for f in calendar["flagged"]] == [second]
    # Raising it again clears the flag and resolves the alert.
    await capacity(world, 2, ["S1", "S2"])
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{second}/plan"))["booking"]["flagged"] is False
    alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": second})
    assert all(a["status"] == "resolved" for a in alerts)


async def test_another_site_neither_sees_nor_books(client):
    world = await planned_world(client)
    (slot,) = await slots(world, day_ahead(9), "08:00")
    coi = await ordered_case(world)
    root = world.headers["admin"]
    await make_site(client, root, "KSB")
    await make_site(client, root, "KSB-LAB", kind="manufacturing")
    outsider = await make_user(client, root, "ksb-coord", ["coordinator"], ["KSB"])
    other_mfg = await make_user(client, root, "ksb-mfg", ["manufacturing"], ["KSB-LAB"])
    hidden = await client.get(f"/api/v1/cases/{coi}/plan", headers=outsider)
    assert_problem(hidden, 404, f"no case with COI {coi}")
    booking = await client.post(f"/api/v1/cases/{coi}/booking", headers=outsider, json={"slot_id": slot})
    assert_problem(booking, 404, f"no case with COI {coi}")
    calendar = await client.get("/api/v1/sites/CTA/calendar", headers=other_mfg)
    assert_problem(calendar, 403, "not assigned to site CTA")
    orders = await client.get("/api/v1/orders", headers=outsider)
    assert orders.json() == []


async def test_withdrawing_an_order_cancels_its_booking_and_frees_the_run(client):
    world = await planned_world(client)
    first_slot, second_slot = await slots(world, day_ahead(15), "08:00", "12:00")
    a, b = await ordered_case(world), await ordered_case(world)
    await world.ok("coord", "POST", f"/api/v1/cases/{a}/booking", 201, json={"slot_id": first_slot})
    assert_problem(
        await world.call("coord", "POST", f"/api/v1/cases/{b}/booking", json={"slot_id": second_slot}),
        409,
        "are booked",
    )
    # Only the treatment site withdraws; the manufacturing site cannot.
    refused = await world.call(
        "mfg", "POST", f"/api/v1/cases/{a}/order/withdraw", json={"reason": "not ours"}
    )
    assert refused.status_code == 403
    withdrawn = await world.ok(
        "coord", "POST", f"/api/v1/cases/{a}/order/withdraw", 201, json={"reason": "patient declined therapy"}
    )
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["withdrawal_reason"] == "patient declined therapy"
    assert withdrawn["decided_by"]
    plan = await world.ok("coord", "GET", f"/api/v1/cases/{a}/plan")
    assert plan["booking"] is None
    assert plan["can_order"] is True
    await world.ok("coord", "POST", f"/api/v1/cases/{b}/booking", 201, json={"slot_id": second_slot})
    # The withdrawn case may be ordered again.
    await ordered_case_again(world, a)


async def ordered_case_again(world: Any, coi: str) -> None:
    body = {
        "product": "car-t",
        "collection_site": "USZ-APH",
        "manufacturing_site": "CTA",
        "mdt_reference": "MDT-2026-18",
        "mdt_date": day_ahead(-1).isoformat(),
        "physician": "Dr. Hanna Keller",
    }
    again = await world.ok("coord", "POST", f"/api/v1/cases/{coi}/order", 201, json=body)
    assert again["status"] == "requested"
