"""Every logger behind its site, played by an attacker: Mallory, a coordinator of another hospital, tries to
put site CRX's logger on her own shipment (which used to file its readings under her shipment, for her
CSV export) and to print its asset tag. A logger she cannot use is answered exactly like one that does
not exist; a logger travels with one active shipment at a time, also when two plans race; its readings go
to that shipment; lending lets another site use it until revoked. Label downloads write nothing, prints
are recorded."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from firmware_bridge.ingest_contract import (
    CONTENT_TYPE,
    INGEST_PATH,
    IngestBatch,
    IngestReading,
    encode_batch,
)
from tests.integration.helpers import assert_problem, make_site, make_user
from tests.integration.journey import PASSWORD, World, build_world

OWNED = "LGR-CRX1"  # owned by CRX, one of coord's sites
NO_SUCH = "LGR-NOSUCH9"


async def setup(client: Any) -> World:
    """The journey's people (coord at USZ, USZ-APH, CTA, CRX), loggers of CRX, the bridge, and Mallory:
    a coordinator of KSB and KSB-APH, another hospital, with a case and a bag of her own."""
    world = await build_world(client)
    root = world.headers["admin"]
    for code in ("KSB", "KSB-APH"):
        await make_site(client, root, code)
    world.headers["mallory"] = await make_user(
        client, root, "mallory", ["coordinator"], ["KSB", "KSB-APH"], password=PASSWORD
    )
    world.headers["bridge"] = await make_user(client, root, "bridge", ["bridge"], ["CRX"], password=PASSWORD)
    for logger in (OWNED, "LGR-CRX2", "LGR-CRX3", "LGR-OFF1"):
        body = {"id": logger, "owner_site": "CRX", "issue_broker_password": False}
        await world.ok("admin", "POST", "/api/v1/loggers", 201, json=body)
    await world.ok("admin", "PATCH", "/api/v1/loggers/LGR-OFF1", json={"active": False, "reason": "retired"})
    return world


async def own_bag(world: World, who: str = "coord") -> tuple[str, str]:
    """A case and one apheresis bag: coord's at USZ-APH, Mallory's at KSB-APH."""
    site = "KSB" if who == "mallory" else "USZ"
    case = await world.ok(
        who, "POST", "/api/v1/cases", 201, json={"treatment_site": site, "therapy": "CAR-T (autologous)"}
    )
    coi = str(case["coi"])
    unit = await world.ok(
        who,
        "POST",
        f"/api/v1/cases/{coi}/units",
        201,
        json={"kind": "APH", "product": "Apheresis", "site": f"{site}-APH"},
    )
    return coi, str(unit["id"])


def plan_body(coi: str, unit: str, logger: str, route: tuple[str, str]) -> dict[str, Any]:
    departure = datetime.now(UTC) - timedelta(minutes=5)
    return {
        "coi": coi,
        "from_site": route[0],
        "to_site": route[1],
        "container_id": "SHIPPER-1",
        "profile": "fresh",
        "planned_departure": departure.isoformat(),
        "planned_arrival": (departure + timedelta(hours=6)).isoformat(),
        "units": [unit],
        "logger_id": logger,
    }


async def plan(world: World, who: str, logger: str) -> Any:
    coi, unit = await own_bag(world, who)
    route = ("KSB-APH", "KSB") if who == "mallory" else ("USZ-APH", "CTA")
    return await world.call(who, "POST", "/api/v1/shipments", json=plan_body(coi, unit, logger, route))


def same_answer(refused: Any, unknown: Any, refused_id: str, unknown_id: str) -> None:
    """Same status and the same body word for word, once the id the caller sent is set aside."""
    assert refused.status_code == unknown.status_code
    assert refused.headers["content-type"] == unknown.headers["content-type"]
    assert refused.text.replace(refused_id, "<id>") == unknown.text.replace(unknown_id, "<id>")


async def count(database_url: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def test_another_sites_logger_is_refused_exactly_like_an_unknown_logger(client, database_url):
    world = await setup(client)
    before = await count(database_url, "SELECT count(*) FROM shipments")
    stolen = await plan(world, "mallory", OWNED)
    unknown = await plan(world, "mallory", NO_SUCH)
    body = assert_problem(unknown, 422, NO_SUCH, "not available to your sites")
    assert body["errors"] == [{"field": "logger_id", "message": "unknown"}]
    same_answer(stolen, unknown, OWNED, NO_SUCH)
    # An inactive logger of one's own site gets the same answer too.
    retired = await plan(world, "coord", "LGR-OFF1")
    same_answer(retired, await plan(world, "coord", NO_SUCH), "LGR-OFF1", NO_SUCH)
    # Nothing planned, and the owner's coordinator still plans with it.
    assert await count(database_url, "SELECT count(*) FROM shipments") == before
    assert (await plan(world, "coord", OWNED)).status_code == 201


async def test_a_logger_on_an_active_shipment_is_refused_even_for_its_own_site(client):
    world = await setup(client)
    first = await plan(world, "coord", OWNED)
    assert first.status_code == 201, first.text
    shipment = first.json()["id"]
    again = await plan(world, "coord", OWNED)
    body = assert_problem(again, 409, OWNED, shipment, "received")
    assert body["errors"] == [{"field": "logger_id", "message": "in use"}]
    # A borrower is refused as well, without being told which shipment of CRX carries the logger.
    await world.ok("coord", "POST", f"/api/v1/loggers/{OWNED}/loans", 201, json=lend_to("KSB"))
    borrowed = await plan(world, "mallory", OWNED)
    assert_problem(borrowed, 409, OWNED, "another active shipment")
    assert shipment not in borrowed.text

    # Once the shipment is received, the logger is free again.
    unit = first.json()["units"][0]
    await world.scan_ok("nurse", "label", "USZ-APH", unit)
    await world.scan_ok("nurse", "pack", "USZ-APH", shipment, unit)
    await world.scan_ok("courier1", "pickup", "USZ-APH", shipment)
    await world.scan_ok("mfg", "receive", "CTA", shipment)
    await world.scan_ok("mfg", "receive", "CTA", shipment, unit)
    checklist = {"seals_intact": True, "shipper_intact": True, "temperature_reviewed": True}
    receipt = {"decision": "accept", "password": PASSWORD, "checklist": checklist}
    await world.ok("mfg", "POST", f"/api/v1/shipments/{shipment}/receipt", 201, json=receipt)
    assert (await plan(world, "coord", OWNED)).status_code == 201


async def test_two_concurrent_plans_with_one_logger_exactly_one_wins(client, database_url):
    world = await setup(client)
    bags = [await own_bag(world) for _ in range(4)]
    bodies = [plan_body(coi, unit, "LGR-CRX2", ("USZ-APH", "CTA")) for coi, unit in bags]
    answers = await asyncio.gather(
        *(world.call("coord", "POST", "/api/v1/shipments", json=body) for body in bodies)
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409], [a.text for a in answers]
    active = (
        "SELECT count(*) FROM shipments WHERE logger_id = $1 AND status NOT IN ('received', 'quarantined')"
    )
    assert await count(database_url, active, "LGR-CRX2") == 1


async def test_the_database_lets_only_one_of_two_racing_transactions_assign_a_logger(client, database_url):
    """Beneath the service's check: two writers that both saw the logger free cannot both commit it."""
    world = await setup(client)
    (coi_a, _), (coi_b, _) = await own_bag(world), await own_bag(world)
    insert = """INSERT INTO shipments (id, coi, from_site, to_site, container_id, logger_id, profile_code,
                                       profile_version, profile, planned_departure, planned_arrival)
                SELECT $1, $2, 'USZ-APH', 'CTA', 'BOX', $3, code, version, definition, now(),
                       now() + interval '1 day'
                FROM temperature_profiles WHERE code = 'fresh' AND version = 1"""
    first, second = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        one = first.transaction()
        await one.start()
        await first.execute(insert, "SHP-2026-900001", coi_a, "LGR-CRX3")
        two = second.transaction()
        await two.start()
        racing = asyncio.create_task(second.execute(insert, "SHP-2026-900002", coi_b, "LGR-CRX3"))
        await asyncio.sleep(0.3)
        assert not racing.done()  # waits for the first transaction's fate
        await one.commit()
        with pytest.raises(asyncpg.UniqueViolationError, match="shipments_one_active_per_logger"):
            await racing
        await two.rollback()
    finally:
        await first.close()
        await second.close()


def reading_batch(logger: str, times: list[datetime]) -> bytes:
    readings = [IngestReading(logger_id=logger, ts=t, temp_c=5.0, received_at=t) for t in times]
    batch = IngestBatch(
        batch_id=uuid.uuid4().hex, bridge_id="test", readings=readings, statuses=[], dead_letters=[]
    )
    return encode_batch(batch)


async def test_readings_go_to_the_loggers_active_shipment_not_to_the_attackers(client, database_url):
    world = await setup(client)
    planned = await plan(world, "coord", OWNED)
    assert planned.status_code == 201
    shipment = planned.json()["id"]
    # Mallory tries to draw the readings to a shipment of hers, dated to depart later.
    assert (await plan(world, "mallory", OWNED)).status_code == 422
    now = datetime.now(UTC).replace(microsecond=0)
    times = [now - timedelta(minutes=m) for m in (3, 2, 1)]
    answer = await client.post(
        INGEST_PATH,
        content=reading_batch(OWNED, times),
        headers={**world.headers["bridge"], "Content-Type": CONTENT_TYPE, "Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    filed = "SELECT count(*) FROM readings WHERE logger_id = $1 AND shipment_id = $2"
    assert await count(database_url, filed, OWNED, shipment) == 3
    csv = await world.call("coord", "GET", f"/api/v1/shipments/{shipment}/readings.csv")
    assert csv.status_code == 200
    assert len(csv.text.strip().splitlines()) == 4  # the header and the three readings
    # Mallory sees neither the shipment's readings nor the logger's.
    stolen = await world.call("mallory", "GET", f"/api/v1/shipments/{shipment}/readings.csv")
    assert stolen.status_code == 404
    history = await world.call("mallory", "GET", f"/api/v1/exports/loggers/{OWNED}/readings.csv")
    assert history.status_code == 404


def lend_to(site: str) -> dict[str, str]:
    return {"site": site, "reason": "KSB's own loggers are being recalibrated"}


async def test_lending_allows_use_and_revoking_stops_it(client):
    world = await setup(client)
    url = f"/api/v1/loggers/{OWNED}/loans"
    # Only the owner lends: to Mallory the logger does not exist, so she cannot lend it to herself.
    assert_problem(await world.call("mallory", "POST", url, json=lend_to("KSB")), 404, "no logger")
    loan = await world.ok("coord", "POST", url, 201, json=lend_to("KSB"))
    assert (loan["site"], loan["lent_by"], loan["revoked_at"]) == ("KSB", "coord", None)
    assert_problem(await world.call("coord", "POST", url, json=lend_to("KSB")), 409, "already lent")
    assert_problem(await world.call("coord", "POST", url, json=lend_to("CRX")), 422, "owns")

    borrowed = await plan(world, "mallory", OWNED)
    assert borrowed.status_code == 201, borrowed.text
    tag = await world.call("mallory", "GET", f"/api/v1/labels/asset/{OWNED}.png")
    assert tag.status_code == 200
    # A borrower does not administer the logger.
    assert (await world.call("mallory", "GET", f"/api/v1/loggers/{OWNED}")).status_code == 404

    revoke = {"reason": "KSB's loggers are back"}
    revoked = await world.ok("coord", "POST", f"{url}/KSB/revoke", json=revoke)
    assert (revoked["revoked_by"], revoked["revoke_reason"]) == ("coord", "KSB's loggers are back")
    assert_problem(await world.call("coord", "POST", f"{url}/KSB/revoke", json=revoke), 404, "not lent")
    # Revoked: unknown again, exactly like a logger that does not exist (checked before it is busy).
    same_answer(await plan(world, "mallory", OWNED), await plan(world, "mallory", NO_SUCH), OWNED, NO_SUCH)
    same_answer(
        await world.call("mallory", "GET", f"/api/v1/labels/asset/{OWNED}.png"),
        await world.call("mallory", "GET", f"/api/v1/labels/asset/{NO_SUCH}.png"),
        OWNED,
        NO_SUCH,
    )
    # The shipment already under way keeps its logger (it is in that box).
    shipment = await world.ok("mallory", "GET", f"/api/v1/shipments/{borrowed.json()['id']}")
    assert shipment["logger_id"] == OWNED

    history = await world.ok("coord", "GET", url)
    assert [(h["site"], h["revoked_at"] is not None) for h in history] == [("KSB", True)]
    trail = await world.ok("admin", "GET", "/api/v1/audit", params={"entity": "logger", "entity_id": OWNED})
    loans = [(e["action"], e["actor"], e["reason"]) for e in trail if e["action"].startswith("loan")]
    assert loans == [
        ("loan_revoke", "coord", "KSB's loggers are back"),
        ("loan", "coord", "KSB's own loggers are being recalibrated"),
    ]


async def test_a_new_owner_ends_the_previous_owners_loans(client):
    world = await setup(client)
    await world.ok("coord", "POST", f"/api/v1/loggers/{OWNED}/loans", 201, json=lend_to("KSB"))
    change = {"owner_site": "CTA", "reason": "moved to the manufacturing site"}
    await world.ok("coord", "PATCH", f"/api/v1/loggers/{OWNED}", json=change)
    assert (await plan(world, "mallory", OWNED)).status_code == 422
    [loan] = await world.ok("coord", "GET", f"/api/v1/loggers/{OWNED}/loans")
    assert loan["revoked_at"] is not None
    assert "owner changed to CTA" in loan["revoke_reason"]


async def test_a_label_download_writes_nothing_and_a_print_is_recorded(client, database_url):
    world = await setup(client)
    coi, _unit = await own_bag(world)
    url = f"/api/v1/labels/wristband/{coi}.pdf"
    events = "SELECT count(*) FROM custody_events WHERE coi = $1 AND action = 'label_print'"
    audit = "SELECT count(*) FROM audit_log WHERE action = 'label_print'"
    for _ in range(2):
        download = await world.call("pharm", "GET", url)
        assert download.status_code == 200
        assert download.content.startswith(b"%PDF")
    assert await count(database_url, events, coi) == 0
    printed = await world.call("pharm", "POST", url)
    assert printed.status_code == 200, printed.text
    assert printed.content.startswith(b"%PDF")
    reprinted = await world.call("pharm", "POST", url)
    assert reprinted.status_code == 200
    timeline = (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["events"]
    prints = [(e["detail"].split()[0], e["data"]["copy"]) for e in timeline if e["action"] == "label_print"]
    assert prints == [("printed", 1), ("reprinted", 2)]

    # An asset tag: a download writes nothing, a print goes to the audit trail.
    before = await count(database_url, audit)
    assert (await world.call("coord", "GET", f"/api/v1/labels/asset/{OWNED}.zpl")).status_code == 200
    assert await count(database_url, audit) == before
    assert (await world.call("coord", "POST", f"/api/v1/labels/asset/{OWNED}.zpl")).status_code == 200
    assert await count(database_url, audit) == before + 1


async def test_another_sites_asset_tag_is_answered_like_an_unknown_logger(client, database_url):
    world = await setup(client)
    audit = "SELECT count(*) FROM audit_log WHERE action = 'label_print'"
    for method in ("GET", "POST"):
        stolen = await world.call("mallory", method, f"/api/v1/labels/asset/{OWNED}.png")
        unknown = await world.call("mallory", method, f"/api/v1/labels/asset/{NO_SUCH}.png")
        assert_problem(unknown, 404, NO_SUCH)
        same_answer(stolen, unknown, OWNED, NO_SUCH)
    assert await count(database_url, audit) == 0
    # Its own site's coordinator, and an administrator, print it.
    assert (await world.call("coord", "GET", f"/api/v1/labels/asset/{OWNED}.png")).status_code == 200
    assert (await world.call("admin", "POST", f"/api/v1/labels/asset/{OWNED}.png")).status_code == 200
