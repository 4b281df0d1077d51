"""The rest of an allocation's life: withdrawn (the recipient cannot receive the bag, the bag is damaged)
and the bag allocated again; the recipient's case completed when their bag is infused; what a bedside
scanner keeps for comparing offline. Tried from the attacker's side: a withdrawal by someone of another
site, of the wrong allocation, after the thaw, without a signature; a withdrawal forged in the table."""

from __future__ import annotations

from typing import Any

import asyncpg

from backend.db.pool import create_pool
from backend.db.repo import users as users_repo
from backend.services import allocation, auth
from backend.settings import Settings
from tests.integration.helpers import assert_problem, make_site, make_user
from tests.integration.journey import PASSWORD, World, build_world
from tests.integration.test_allogeneic import (
    _allocate,
    _batch_stored_at_usz,
    _bedside,
    _events,
    _recipient,
    _signatures,
    refused,
)

WITHDRAWALS = "/api/v1/allogeneic/withdrawals"
BOOK = "/api/v1/allogeneic/bedside-book"


async def _withdraw(
    world: World,
    bag: str,
    recipient: str,
    who: str = "pharm",
    site: str = "USZ",
    password: str = PASSWORD,
    reason: str = "patient too unwell to receive it",
) -> Any:
    body = {"site": site, "unit": bag, "recipient": f"&/{recipient}", "reason": reason, "password": password}
    return await world.call(who, "POST", WITHDRAWALS, json=body)


async def test_a_withdrawn_allocation_stops_the_former_recipient_and_frees_the_bag(client: Any) -> None:
    world = await build_world(client)
    batch, bags = await _batch_stored_at_usz(world, units=2)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    assert (await _allocate(world, bags[0], anna)).status_code == 201

    done = await _withdraw(world, bags[0], anna)
    assert done.status_code == 201, done.text
    assert (done.json()["unit_id"], done.json()["recipient_coi"]) == (bags[0], anna)
    # On both chains: the batch's signed withdrawal naming the allocation, the recipient's pointing to it.
    (withdrawal,) = [e for e in await _events(world, batch) if e["action"] == "withdraw_allocation"]
    (allocate,) = [e for e in await _events(world, batch) if e["action"] == "allocate"]
    assert withdrawal["unit_ids"] == [bags[0]]
    assert withdrawal["data"]["allocation_event_id"] == allocate["id"]
    assert withdrawal["data"]["reason"] == "patient too unwell to receive it"
    assert withdrawal["signatures"][0]["meaning"] == "allocation withdrawn"
    (withdrawn,) = [e for e in await _events(world, anna) if e["action"] == "allocation_withdrawn"]
    assert (withdrawn["data"]["unit_id"], withdrawn["data"]["event_id"]) == (bags[0], withdrawal["id"])
    # Anna's bedside says STOP; the bag is not dispensed or infused for her.
    stop = await _bedside(world, anna, bags[0])
    assert assert_problem(stop, 409, "allocated to no recipient")["refusal"] == "not_allocated"
    refused(await world.scan("pharm", "dispense", "USZ", bags[0], f"&/{anna}"), 409, "not_allocated")
    refused(
        await world.scan("pharm", "infuse", "USZ", f"&/{anna}", bags[0], signatures=_signatures()),
        409,
        "not_allocated",
    )
    assert (await world.ok("pharm", "GET", f"/api/v1/cases/{anna}/allocations"))["allocations"] == {}
    # Withdrawn once: a second withdrawal has nothing to withdraw.
    assert_problem(await _withdraw(world, bags[0], anna), 409, "nothing to withdraw")
    # Still in storage, the bag is allocated again, to Ben, and goes to him.
    assert (await _allocate(world, bags[0], ben)).status_code == 201
    assert (await world.ok("pharm", "GET", f"/api/v1/cases/{batch}/allocations"))["allocations"] == {
        bags[0]: ben
    }
    assert (await _bedside(world, anna, bags[0])).json()["refusal"] == "coi_mismatch"
    await world.scan_ok("pharm", "dispense", "USZ", bags[0], f"&/{ben}")
    await world.scan_ok("pharm", "thaw", "USZ", bags[0])
    assert (await _bedside(world, ben, bags[0])).json()["verdict"] == "MATCH"
    # A bag already dispensed for Anna is withdrawn too (before its thaw): then it is thawed for no one.
    assert (await _allocate(world, bags[1], anna)).status_code == 201
    await world.scan_ok("pharm", "dispense", "USZ", bags[1], f"&/{anna}")
    assert (await _withdraw(world, bags[1], anna, reason="bag damaged on the ward")).status_code == 201
    refused(await world.scan("pharm", "thaw", "USZ", bags[1]), 409, "not_allocated")
    assert (await _bedside(world, anna, bags[1])).json()["refusal"] == "not_allocated"
    assert (await world.ok("qa", "GET", f"/api/v1/cases/{batch}/verify"))["ok"] is True
    for coi in (anna, ben):
        assert (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True


async def test_withdrawals_refused_each_with_a_problem_and_nothing_written(client: Any) -> None:
    world = await build_world(client)
    batch, bags = await _batch_stored_at_usz(world, units=2)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    assert (await _allocate(world, bags[0], anna)).status_code == 201
    root = world.headers["admin"]
    await make_site(client, root, "KSW", kind="hospital")
    world.headers["outsider"] = await make_user(
        client, root, "outsider", ["pharmacist"], ["KSW"], password=PASSWORD
    )
    # Another site's pharmacist: the bag and the case do not exist for them, word for word.
    foreign = await _withdraw(world, bags[0], anna, who="outsider", site="KSW")
    missing = bags[0][:-2] + "99"
    nowhere = await _withdraw(world, missing, anna, who="outsider", site="KSW")
    assert foreign.status_code == nowhere.status_code == 404
    assert foreign.json()["detail"].replace(bags[0], "?") == nowhere.json()["detail"].replace(missing, "?")
    # Not at a site they are not bound to; not by manufacturing, QA or the coordinator.
    assert_problem(await _withdraw(world, bags[0], anna, site="KSW"), 403)
    for who in ("mfg", "qa", "coord"):
        assert_problem(await _withdraw(world, bags[0], anna, who=who), 403)
    # Not someone else's allocation, not a bag allocated to nobody.
    assert_problem(await _withdraw(world, bags[0], ben), 409, "not allocated to case", anna)
    assert_problem(await _withdraw(world, bags[1], anna), 409, "allocated to nobody")
    # Not without the signature or a reason.
    assert_problem(await _withdraw(world, bags[0], anna, password="nope"), 422, "signature refused")
    assert (await _withdraw(world, bags[0], anna, reason="")).status_code in (400, 422)
    # Not once the bag is thawed: it is given to Anna or disposed of.
    await world.scan_ok("pharm", "dispense", "USZ", bags[0], f"&/{anna}")
    await world.scan_ok("pharm", "thaw", "USZ", bags[0])
    assert_problem(await _withdraw(world, bags[0], anna), 409, "thawed", "only before")
    # Nothing was written: Anna's bag is still hers.
    assert [e for e in await _events(world, batch) if e["action"] == "withdraw_allocation"] == []
    assert [e for e in await _events(world, anna) if e["action"] == "allocation_withdrawn"] == []
    assert (await _bedside(world, anna, bags[0])).json()["verdict"] == "MATCH"


async def test_a_withdrawal_forged_in_the_table_is_refused_or_stops(client: Any, database_url: str) -> None:
    world = await build_world(client)
    _batch, bags = await _batch_stored_at_usz(world, units=2)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    for bag in bags:
        assert (await _allocate(world, bag, anna)).status_code == 201
    assert (await _withdraw(world, bags[1], anna)).status_code == 201
    conn = await asyncpg.connect(database_url)
    try:
        # The one change the table allows needs the batch's signed withdrawal of that allocation.
        for forged in (
            "UPDATE unit_allocations SET withdrawn_event_id = event_id, withdrawn_by = allocated_by, "
            "withdrawn_at = now() WHERE unit_id = $1",
            "UPDATE unit_allocations SET recipient_coi = $2 WHERE unit_id = $1",
            "DELETE FROM unit_allocations WHERE unit_id = $1",
        ):
            try:
                await conn.execute(forged, bags[0], *([ben] if "$2" in forged else []))
                raise AssertionError(f"the allocation row was changed: {forged}")
            except asyncpg.InsufficientPrivilegeError:
                pass
        # Un-withdrawing the second bag's allocation is refused too.
        try:
            await conn.execute(
                "UPDATE unit_allocations SET withdrawn_event_id = NULL WHERE unit_id = $1", bags[1]
            )
            raise AssertionError("a withdrawal was undone")
        except (asyncpg.InsufficientPrivilegeError, asyncpg.CheckViolationError):
            pass
        # With the owner's rights and the trigger off: the first bag freed behind the record's back, the
        # second bag's withdrawn allocation to Anna made live again.
        await conn.execute("ALTER TABLE unit_allocations DISABLE TRIGGER unit_allocations_append_only")
        await conn.execute(
            "UPDATE unit_allocations SET withdrawn_event_id = event_id, withdrawn_by = allocated_by, "
            "withdrawn_at = now() WHERE unit_id = $1",
            bags[0],
        )
        await conn.execute(
            "UPDATE unit_allocations SET withdrawn_event_id = NULL, withdrawn_by = NULL, withdrawn_at = NULL "
            "WHERE unit_id = $1",
            bags[1],
        )
    finally:
        await conn.close()
    # The bag freed in the table is still Anna's in the record: it is not allocated to Ben.
    assert_problem(await _allocate(world, bags[0], ben), 409, "signed record")
    # The allocation made live again is not in the record: STOP, never a MATCH.
    refused(await world.scan("pharm", "dispense", "USZ", bags[1], f"&/{anna}"), 409, "record_mismatch")
    stop = await _bedside(world, anna, bags[1])
    assert assert_problem(stop, 409, "signed record")["refusal"] == "record_mismatch"


async def _principal(settings: Settings, username: str) -> Any:
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    async with pool.acquire() as conn:
        user = await users_repo.by_username(conn, username)
    assert user is not None
    return pool, auth.principal_of(user)


async def test_the_recipients_case_is_completed_when_their_bag_is_infused(
    client: Any, settings: Settings
) -> None:
    world = await build_world(client)
    batch, bags = await _batch_stored_at_usz(world, units=3)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    # Anna has two bags (one is disposed of), Ben one that he does not receive yet.
    for bag, recipient in ((bags[0], anna), (bags[1], anna), (bags[2], ben)):
        assert (await _allocate(world, bag, recipient)).status_code == 201
    await world.scan_ok("pharm", "dispose", "USZ", bags[1], reason="bag damaged in storage")
    await world.scan_ok("pharm", "dispense", "USZ", bags[0], f"&/{anna}")
    await world.scan_ok("pharm", "thaw", "USZ", bags[0])
    await world.scan_ok("pharm", "infuse", "USZ", f"&/{anna}", bags[0], signatures=_signatures())
    # The infusion scan itself completed Anna's case (in its transaction).
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{anna}"))["status"] == "completed"
    pool, pharm = await _principal(settings, "pharm")
    try:
        async with pool.acquire() as conn, conn.transaction():
            # Once: a completed case is not completed again; Ben's bag is not infused.
            assert await allocation.complete_recipients(conn, pharm, "USZ", [bags[0], bags[1]]) == []
            assert await allocation.complete_recipients(conn, pharm, "USZ", [bags[2]]) == []
    finally:
        await pool.close()
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{anna}"))["status"] == "completed"
    assert (await world.ok("coord", "GET", f"/api/v1/cases/{ben}"))["status"] == "open"
    (completed,) = [e for e in await _events(world, anna) if e["action"] == "case_completed"]
    assert completed["data"]["infused"] == [bags[0]]
    # The record replays to the same state: the recipient's chain says it is completed.
    assert (await world.ok("qa", "GET", f"/api/v1/cases/{batch}/verify"))["ok"] is True
    for coi in (anna, ben):
        assert (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/verify"))["ok"] is True
    # A completed recipient is given nothing more.
    assert (await _bedside(world, anna, bags[0])).status_code == 409


async def test_the_bedside_book_holds_the_sites_batches_and_live_allocations(client: Any) -> None:
    world = await build_world(client)
    batch, bags = await _batch_stored_at_usz(world, units=3)
    anna, ben = await _recipient(world, "MRN-A"), await _recipient(world, "MRN-B")
    for bag, recipient in ((bags[0], anna), (bags[1], ben)):
        assert (await _allocate(world, bag, recipient)).status_code == 201
    await world.scan_ok("pharm", "dispense", "USZ", bags[0], f"&/{anna}")
    await world.scan_ok("pharm", "thaw", "USZ", bags[0])
    assert (await _withdraw(world, bags[1], ben)).status_code == 201
    book = await world.ok("pharm", "GET", BOOK, params={"site": "USZ"})
    assert book["site"] == "USZ"
    assert book["batches"] == [batch]
    # Anna's bag is thawed: her allocation is fixed. Ben's was withdrawn; the third bag is for nobody.
    assert book["allocations"] == {bags[0]: {"recipient_coi": anna, "fixed": True}}
    # A site the caller is not bound to, a malformed site, a role that does not verify at the bedside.
    assert_problem(await world.call("pharm", "GET", BOOK, params={"site": "CTA"}), 403)
    assert (await world.call("pharm", "GET", BOOK, params={"site": "x; DROP"})).status_code == 400
    assert_problem(await world.call("mfg", "GET", BOOK, params={"site": "CTA"}), 403)
