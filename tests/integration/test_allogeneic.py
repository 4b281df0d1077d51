"""Allogeneic (off-the-shelf) products: one batch, many recipients. Tried from the attacker's side as well:
a bag of one recipient at another's bedside, a bag allocated twice, an allocation by someone of another
site, a bag given to nobody's wristband, and an allocation row changed behind the record's back."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from tests.integration.helpers import assert_problem, make_site, make_user
from tests.integration.journey import PASSWORD, World, accept_receipt, build_world

BATCHES = "/api/v1/allogeneic/batches"
RECIPIENTS = "/api/v1/allogeneic/recipients"
ALLOCATIONS = "/api/v1/allogeneic/allocations"


def refused(response: Any, status: int, refusal: str) -> dict[str, Any]:
    """A refused scan: its problem body, naming the refusal."""
    body = assert_problem(response, status)
    assert body["refusal"] == refusal, body
    return body


def _signatures() -> list[dict[str, str]]:
    return [
        {"username": "pharm", "password": PASSWORD, "meaning": "verified at bedside"},
        {"username": "pharm2", "password": PASSWORD, "meaning": "administered"},
    ]


async def _batch_stored_at_usz(
    world: World, units: int = 3, batch_id: str = "IPSC-DA-2026-007"
) -> tuple[str, list[str]]:
    """A cell-line batch registered at CTA, labelled, released, shipped to USZ, received and stored."""
    batch = await world.ok(
        "mfg",
        "POST",
        BATCHES,
        201,
        json={
            "batch_id": batch_id,
            "source_kind": "cell_line",
            "source_id": "HES3-MCB-01",
            "product": "iPSC-derived dopaminergic progenitors",
            "site": "CTA",
            "units": units,
        },
    )
    coi, bags = batch["coi"], [u["id"] for u in batch["units"]]
    assert bags == [f"{coi}-PRC-{n:02d}" for n in range(1, units + 1)]
    assert all(u["lot"] == batch_id for u in batch["units"])
    await world.scan_ok("mfg", "label", "CTA", *bags)
    for bag in bags:
        await world.ok("qa", "POST", f"/api/v1/units/{bag}/release", 201, json={"password": PASSWORD})
    ship = await world.shipment("mfg", coi, "CTA", "USZ", bags, profile="cryo")
    await world.scan_ok("mfg", "pack", "CTA", ship, *bags)
    await world.scan_ok("courier1", "pickup", "CTA", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship)
    await world.scan_ok("pharm", "receive", "USZ", ship, *bags)
    await accept_receipt(world, "pharm", ship)
    await world.scan_ok("pharm", "store", "USZ", *bags, storage_location="LN2-2")
    return coi, bags


async def _recipient(world: World, ref: str, who: str = "coord", site: str = "USZ") -> str:
    case = await world.ok(
        who, "POST", RECIPIENTS, 201, json={"treatment_site": site, "therapy": "iPSC DA", "patient_ref": ref}
    )
    return str(case["coi"])


async def _allocate(world: World, bag: str, recipient: str, who: str = "pharm", site: str = "USZ") -> Any:
    return await world.call(
        who,
        "POST",
        ALLOCATIONS,
        json={"site": site, "unit": bag, "recipient": f"&/{recipient}", "password": PASSWORD},
    )


async def _bedside(world: World, wristband: str, bag: str) -> Any:
    body = {"idempotency_key": str(uuid.uuid4()), "site": "USZ", "wristband": f"&/{wristband}", "bag": bag}
    return await world.call("pharm", "POST", "/api/v1/bedside/verifications", json=body)


async def _events(world: World, coi: str) -> list[dict[str, Any]]:
    return list((await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["events"])


async def test_a_batch_allocated_to_two_recipients_each_matched_and_infused_at_their_bedside(
    client: Any,
) -> None:
    world = await build_world(client)
    batch, bags = await _batch_stored_at_usz(world)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    for bag, recipient in ((bags[0], anna), (bags[1], ben)):
        response = await _allocate(world, bag, recipient)
        assert response.status_code == 201, response.text
        assert response.json()["recipient_coi"] == recipient
        assert response.json()["batch_id"] == "IPSC-DA-2026-007"
        # Dispensed with the recipient's wristband scanned beside the bag: the bag is theirs.
        await world.scan_ok("pharm", "dispense", "USZ", bag, f"&/{recipient}")
        await world.scan_ok("pharm", "thaw", "USZ", bag)
        verdict = await _bedside(world, recipient, bag)
        assert verdict.status_code == 200, verdict.text
        assert verdict.json()["verdict"] == "MATCH"
        assert batch in verdict.json()["detail"]
        await world.scan_ok("pharm", "infuse", "USZ", f"&/{recipient}", bag, signatures=_signatures())
        assert (await world.ok("pharm", "GET", f"/api/v1/units/{bag}"))["status"] == "infused"
    # Donor/cell line -> batch -> unit -> recipient, on both chains.
    allocate = [e for e in await _events(world, batch) if e["action"] == "allocate"]
    assert [(e["unit_ids"], e["data"]["recipient_coi"]) for e in allocate] == [
        ([bags[0]], anna),
        ([bags[1]], ben),
    ]
    assert allocate[0]["data"]["source_id"] == "HES3-MCB-01"
    assert allocate[0]["signatures"][0]["meaning"] == "allocated to recipient"
    for recipient, bag in ((anna, bags[0]), (ben, bags[1])):
        allocated = [e for e in await _events(world, recipient) if e["action"] == "allocated"]
        assert [(e["data"]["unit_id"], e["data"]["batch_coi"]) for e in allocated] == [(bag, batch)]
        assert (await world.ok("qa", "GET", f"/api/v1/cases/{batch}/verify"))["ok"] is True
        assert (await world.ok("coord", "GET", f"/api/v1/cases/{recipient}/verify"))["ok"] is True
    # The batch's view: its source, its bags and whom each allocated bag is for.
    view = await world.ok("pharm", "GET", f"/api/v1/cases/{batch}/allocations")
    assert (view["batch"]["batch_id"], view["batch"]["source_kind"], view["batch"]["source_id"]) == (
        "IPSC-DA-2026-007",
        "cell_line",
        "HES3-MCB-01",
    )
    assert view["allocations"] == {bags[0]: anna, bags[1]: ben}
    assert view["product_kind"] == "allogeneic_batch"
    assert (await world.ok("mfg", "GET", f"/api/v1/cases/{batch}/allocations"))["allocations"] == view[
        "allocations"
    ]
    mine = await world.ok("pharm", "GET", f"/api/v1/cases/{anna}/allocations")
    assert (mine["product_kind"], mine["batch"], mine["allocations"]) == (
        "allogeneic_recipient",
        None,
        {bags[0]: batch},
    )
    # The manufacturer does not see the recipients' cases.
    assert_problem(await world.call("mfg", "GET", f"/api/v1/cases/{anna}/allocations"), 404, "no case")
    # The batch's and a recipient's record, PDF and EPCIS export render with the allocation in them.
    for coi in (batch, anna):
        record = await world.call("coord", "GET", f"/api/v1/cases/{coi}/record.json")
        assert record.status_code == 200, record.text
        assert bags[0] in record.text
        assert (await world.call("coord", "GET", f"/api/v1/cases/{coi}/report.pdf")).status_code == 200
    epcis = await world.call("qa", "GET", f"/api/v1/cases/{batch}/epcis")
    assert epcis.status_code == 200, epcis.text
    # The third bag is still in storage and the batch case still open.
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bags[2]}"))["status"] == "stored"
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{batch}"))["status"] == "open"


async def test_recipient_as_bag_at_another_recipients_bedside_is_a_stop_recorded_and_alerted(
    client: Any,
) -> None:
    world = await build_world(client)
    batch, bags = await _batch_stored_at_usz(world, units=2)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    assert (await _allocate(world, bags[0], anna)).status_code == 201
    await world.scan_ok("pharm", "dispense", "USZ", bags[0])
    await world.scan_ok("pharm", "thaw", "USZ", bags[0])

    stop = await _bedside(world, ben, bags[0])
    body = assert_problem(stop, 409, "STOP", anna, ben)
    assert body["refusal"] == "coi_mismatch"
    assert sorted(body["cois"]) == sorted({anna, ben, batch})
    for coi in (anna, ben, batch):
        last = (await _events(world, coi))[-1]
        assert (last["action"], last["outcome"], last["refusal"]) == (
            "bedside_verify",
            "refused",
            "coi_mismatch",
        )
        assert last["id"] in body["event_ids"]
        alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": coi})
        assert [(a["kind"], a["severity"]) for a in alerts] == [("coi_mismatch", "critical")]

    # The infusion scan says the same: STOP, in the batch's chain, Ben's and Anna's; the bag stays thawed.
    scan = await world.scan("pharm", "infuse", "USZ", f"&/{ben}", bags[0], signatures=_signatures())
    first = refused(scan, 409, "coi_mismatch")["event_id"]
    assert (await _events(world, batch))[-1]["id"] == first
    for coi in (anna, ben):
        last = (await _events(world, coi))[-1]
        assert (last["action"], last["refusal"], last["data"]["event_id"]) == (
            "infuse",
            "coi_mismatch",
            first,
        )
        alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": coi})
        assert len([a for a in alerts if a["kind"] == "coi_mismatch"]) == 2
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bags[0]}"))["status"] == "thawed"
    # Anna's own wristband still matches.
    assert (await _bedside(world, anna, bags[0])).json()["verdict"] == "MATCH"


async def test_an_allocated_bag_is_not_allocated_again_nor_dispensed_for_another_recipient(
    client: Any,
) -> None:
    world = await build_world(client)
    batch, bags = await _batch_stored_at_usz(world, units=2)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    assert (await _allocate(world, bags[0], anna)).status_code == 201
    for recipient in (ben, anna):
        assert_problem(await _allocate(world, bags[0], recipient), 409, "already allocated", anna)
    assert len([e for e in await _events(world, batch) if e["action"] == "allocate"]) == 1
    assert [e for e in await _events(world, ben) if e["action"] == "allocated"] == []
    # Dispensing Anna's bag against Ben's wristband is a chain-of-identity STOP.
    refused(await world.scan("pharm", "dispense", "USZ", bags[0], f"&/{ben}"), 409, "coi_mismatch")
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bags[0]}"))["status"] == "stored"
    # Neither an autologous case as recipient nor the batch itself.
    autologous = await world.new_case()
    assert_problem(await _allocate(world, bags[1], autologous), 409, "not an allogeneic recipient")
    assert_problem(await _allocate(world, bags[1], batch), 409, "not an allogeneic recipient")
    # Nor a bag still at manufacturing (the pharmacy does not even see its batch).
    more = await world.ok(
        "mfg",
        "POST",
        BATCHES,
        201,
        json={
            "batch_id": "IPSC-DA-2026-009",
            "source_kind": "donor",
            "source_id": "D-0042",
            "product": "NK",
            "site": "CTA",
            "units": 1,
        },
    )
    assert_problem(await _allocate(world, more["units"][0]["id"], anna), 404)
    # A batch id is registered once.
    again = await world.call(
        "mfg",
        "POST",
        BATCHES,
        json={
            "batch_id": "IPSC-DA-2026-009",
            "source_kind": "donor",
            "source_id": "D-0042",
            "product": "NK",
            "site": "CTA",
            "units": 1,
        },
    )
    assert_problem(again, 409, "already registered")


async def test_allocation_by_someone_of_another_site_is_refused_by_the_object_gate(client: Any) -> None:
    world = await build_world(client)
    batch, bags = await _batch_stored_at_usz(world, units=2)
    anna = await _recipient(world, "MRN-A")
    root = world.headers["admin"]
    await make_site(client, root, "KSW", kind="hospital")
    world.headers["outsider"] = await make_user(
        client, root, "outsider", ["pharmacist"], ["KSW"], password=PASSWORD
    )
    world.headers["kswcoord"] = await make_user(
        client, root, "kswcoord", ["coordinator"], ["KSW"], password=PASSWORD
    )
    # A bag and a case of a site you are not bound to do not exist for you: word for word.
    foreign = await _allocate(world, bags[0], anna, who="outsider", site="KSW")
    missing = bags[0][:-2] + "99"
    nowhere = await _allocate(world, missing, anna, who="outsider", site="KSW")
    assert foreign.status_code == nowhere.status_code == 404
    assert foreign.json()["detail"].replace(bags[0], "?") == nowhere.json()["detail"].replace(missing, "?")
    # USZ's pharmacist allocating to a KSW patient's case: the case is not theirs to see.
    kurt = await _recipient(world, "MRN-K", who="kswcoord", site="KSW")
    assert_problem(await _allocate(world, bags[0], kurt), 404, "no case")
    # Nor at a site they are not bound to.
    assert_problem(await _allocate(world, bags[0], anna, site="KSW"), 403)
    # Manufacturing cannot allocate, and a coordinator cannot open a recipient elsewhere.
    assert (await _allocate(world, bags[0], anna, who="mfg", site="USZ")).status_code == 403
    assert_problem(
        await world.call("coord", "POST", RECIPIENTS, json={"treatment_site": "KSW", "therapy": "x"}), 403
    )
    # A batch is registered by manufacturing at its own site.
    body = {
        "batch_id": "B-1",
        "source_kind": "donor",
        "source_id": "D-1",
        "product": "NK",
        "site": "KSW",
        "units": 1,
    }
    assert (await world.call("mfg", "POST", BATCHES, json=body)).status_code == 403
    assert (await world.call("pharm", "POST", BATCHES, json=body | {"site": "USZ"})).status_code == 403
    # The batch itself is not theirs to see either.
    assert_problem(await world.call("outsider", "GET", f"/api/v1/cases/{batch}/allocations"), 404, "no case")
    # Nothing was written to either chain.
    assert [e for e in await _events(world, anna) if e["action"] == "allocated"] == []


async def test_an_unallocated_bag_is_neither_dispensed_nor_infused(client: Any) -> None:
    world = await build_world(client)
    batch, bags = await _batch_stored_at_usz(world, units=1)
    anna = await _recipient(world, "MRN-A")
    body = refused(await world.scan("pharm", "dispense", "USZ", bags[0]), 409, "not_allocated")
    assert "allocated to no recipient" in body["detail"]
    refused(
        await world.scan("pharm", "infuse", "USZ", f"&/{anna}", bags[0], signatures=_signatures()),
        409,
        "not_allocated",
    )
    # Not even with a wristband printed with the batch's own COI.
    refused(
        await world.scan("pharm", "infuse", "USZ", f"&/{batch}", bags[0], signatures=_signatures()),
        409,
        "not_allocated",
    )
    stop = await _bedside(world, anna, bags[0])
    assert assert_problem(stop, 409, "allocated to no recipient")["refusal"] == "not_allocated"
    assert (await world.ok("pharm", "GET", f"/api/v1/units/{bags[0]}"))["status"] == "stored"
    assert (await world.ok("qa", "GET", f"/api/v1/cases/{batch}/verify"))["ok"] is True


async def test_an_allocation_row_changed_behind_the_record_is_a_stop(client: Any, database_url: str) -> None:
    world = await build_world(client)
    _batch, bags = await _batch_stored_at_usz(world, units=1)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    assert (await _allocate(world, bags[0], anna)).status_code == 201
    conn = await asyncpg.connect(database_url)
    try:
        # The table is append-only: the application cannot move an allocation.
        try:
            await conn.execute("UPDATE unit_allocations SET recipient_coi = $1", ben)
            raise AssertionError("the allocation row was updated")
        except asyncpg.InsufficientPrivilegeError:
            pass
        # Someone with the owner's rights switches the trigger off and points the bag at Ben.
        await conn.execute("ALTER TABLE unit_allocations DISABLE TRIGGER unit_allocations_append_only")
        await conn.execute("UPDATE unit_allocations SET recipient_coi = $1 WHERE unit_id = $2", ben, bags[0])
    finally:
        await conn.close()
    body = refused(await world.scan("pharm", "dispense", "USZ", bags[0], f"&/{ben}"), 409, "record_mismatch")
    assert anna in body["detail"]
    assert ben in body["detail"]
    refused(await world.scan("pharm", "dispense", "USZ", bags[0]), 409, "record_mismatch")
    stop = await _bedside(world, ben, bags[0])
    assert assert_problem(stop, 409, "signed record")["refusal"] == "record_mismatch"
    alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": ben})
    assert any(a["severity"] == "critical" for a in alerts)


async def test_batch_and_allocation_fields_are_bounded(client: Any) -> None:
    world = await build_world(client)
    good = {
        "batch_id": "B-1",
        "source_kind": "donor",
        "source_id": "D-1",
        "product": "NK",
        "site": "CTA",
        "units": 1,
    }
    for bad in (
        {"units": 0},
        {"units": 100},
        {"batch_id": "B 1; DROP TABLE"},
        {"batch_id": "B" * 41},
        {"source_kind": "patient"},
        {"product": "x" * 201},
        {"extra": 1},
    ):
        response = await world.call("mfg", "POST", BATCHES, json=good | bad)
        assert response.status_code in (400, 422), (bad, response.text)
    hostile = {"site": "USZ", "unit": "x" * 201, "recipient": "&/CHA999926000001", "password": PASSWORD}
    assert (await world.call("pharm", "POST", ALLOCATIONS, json=hostile)).status_code in (400, 422)
    garbled = hostile | {"unit": "not-a-bag"}
    assert_problem(await world.call("pharm", "POST", ALLOCATIONS, json=garbled), 422)


async def test_a_bag_allocated_to_a_cancelled_recipient_goes_to_nobody(client: Any) -> None:
    world = await build_world(client)
    _batch, bags = await _batch_stored_at_usz(world, units=1)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    wrong = await world.call(
        "pharm",
        "POST",
        ALLOCATIONS,
        json={"site": "USZ", "unit": bags[0], "recipient": anna, "password": "nope"},
    )
    assert_problem(wrong, 422, "signature refused")
    assert (await _allocate(world, bags[0], anna)).status_code == 201
    await world.ok(
        "coord",
        "POST",
        f"/api/v1/cases/{anna}/cancel",
        201,
        json={"reason": "withdrew", "password": PASSWORD},
    )
    body = refused(await world.scan("pharm", "dispense", "USZ", bags[0]), 409, "case_closed")
    assert anna in body["detail"]
    refused(await world.scan("pharm", "dispense", "USZ", bags[0], f"&/{anna}"), 409, "case_closed")
    # Another patient's wristband is still the chain-of-identity STOP, not a closed case.
    refused(await world.scan("pharm", "dispense", "USZ", bags[0], f"&/{ben}"), 409, "coi_mismatch")
    stop = await _bedside(world, anna, bags[0])
    assert assert_problem(stop, 409, "cancelled")["refusal"] == "case_closed"
    assert (await _bedside(world, ben, bags[0])).json()["refusal"] == "coi_mismatch"
    # Nor is it allocated again to someone else: it is disposed of.
    assert_problem(await _allocate(world, bags[0], ben), 409, "already allocated")
    await world.scan_ok("pharm", "dispose", "USZ", bags[0], reason="recipient withdrew")


async def test_two_pharmacists_allocating_one_bag_at_once_allocate_it_once(client: Any) -> None:
    world = await build_world(client)
    batch, bags = await _batch_stored_at_usz(world, units=1)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    first, second = await asyncio.gather(
        _allocate(world, bags[0], anna, who="pharm"), _allocate(world, bags[0], ben, who="pharm2")
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409], (first.text, second.text)
    winner = anna if first.status_code == 201 else ben
    assert (await world.ok("pharm", "GET", f"/api/v1/cases/{batch}/allocations"))["allocations"] == {
        bags[0]: winner
    }
    assert len([e for e in await _events(world, batch) if e["action"] == "allocate"]) == 1
    for coi in (anna, ben):
        allocated = [e for e in await _events(world, coi) if e["action"] == "allocated"]
        assert len(allocated) == (1 if coi == winner else 0)
