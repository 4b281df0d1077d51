"""The ingest endpoint against a real PostgreSQL: formats, duplicates, backlogs, dead letters, statuses,
refusals and access."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import asyncpg
import msgspec
from telemetry_support import (
    BASE,
    batch,
    post_batch,
    reading,
    register,
    setup_accounts,
    stored,
)

from firmware_bridge.ingest_contract import (
    CONTENT_TYPE,
    INGEST_PATH,
    DeadLetter,
    LoggerStatus,
    decode_result,
    encode_batch,
)
from tests.integration.helpers import assert_problem


async def test_msgpack_and_json_batches_are_stored_and_answered_in_the_asked_format(client, database_url):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0001")
    first = batch([reading("LGR-0001", m, 4.0 + m / 10, battery_pct=80, lid_open=False) for m in range(3)])
    response = await client.post(
        INGEST_PATH,
        content=encode_batch(first),
        headers={
            **who["bridge"],
            "Content-Type": CONTENT_TYPE,
            "Accept": f"{CONTENT_TYPE}, application/json",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(CONTENT_TYPE)
    result = decode_result(response.content, response.headers["content-type"])
    assert (result.stored, result.duplicates, result.dead_lettered) == (3, 0, 0)

    second = batch([reading("LGR-0001", m, 5.5) for m in range(3, 5)])
    assert await post_batch(client, who["bridge"], second, as_json=True) == {
        "stored": 2,
        "duplicates": 0,
        "dead_lettered": 0,
    }
    conn = await asyncpg.connect(database_url)
    try:
        rows = await stored(conn, "LGR-0001")
        extra = await conn.fetchrow(
            "SELECT battery_pct, lid_open, received_at, stored_at FROM readings WHERE logger_id = $1 "
            "ORDER BY ts LIMIT 1",
            "LGR-0001",
        )
    finally:
        await conn.close()
    assert [(ts - BASE, temp) for ts, temp, _ in rows] == [
        (timedelta(minutes=0), 4.0),
        (timedelta(minutes=1), 4.1),
        (timedelta(minutes=2), 4.2),
        (timedelta(minutes=3), 5.5),
        (timedelta(minutes=4), 5.5),
    ]
    assert (extra["battery_pct"], extra["lid_open"], extra["received_at"]) == (80, False, BASE)
    assert extra["stored_at"] > extra["received_at"]


async def test_redelivered_and_out_of_order_readings_end_as_the_exact_set(client, database_url):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0002")
    live = [reading("LGR-0002", m, 3.0 + m % 5) for m in range(40, 60)]
    # A backlog from an offline period, newest first, arriving after the live readings.
    backlog = [reading("LGR-0002", m, 2.0 + m % 7) for m in reversed(range(40))]
    assert (await post_batch(client, who["bridge"], batch(live)))["stored"] == 20
    assert (await post_batch(client, who["bridge"], batch(backlog)))["stored"] == 40

    # The same batch again (a retry), then a batch that overlaps both and repeats a reading inside itself.
    again = await post_batch(client, who["bridge"], batch(live))
    assert again == {"stored": 0, "duplicates": 20, "dead_lettered": 0}
    mixed = [*live[:5], *backlog[:5], reading("LGR-0002", 60, 9.0), reading("LGR-0002", 60, 9.0)]
    assert await post_batch(client, who["bridge"], batch(mixed)) == {
        "stored": 1,
        "duplicates": 11,
        "dead_lettered": 0,
    }
    conn = await asyncpg.connect(database_url)
    try:
        rows = await stored(conn, "LGR-0002")
    finally:
        await conn.close()
    expected = {(r.ts, round(r.temp_c, 2)) for r in [*live, *backlog, reading("LGR-0002", 60, 9.0)]}
    assert {(ts, temp) for ts, temp, _ in rows} == expected
    assert len(rows) == 61


async def test_finding_7_a_conflicting_reading_is_a_dead_letter_with_both_values_and_the_first_stays(
    client, database_url
):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0007")
    assert (await post_batch(client, who["bridge"], batch([reading("LGR-0007", 1, 4.5)])))["stored"] == 1
    # The same time with another value, once against the stored reading and once inside one batch.
    answer = await post_batch(
        client,
        who["bridge"],
        batch([reading("LGR-0007", 1, 9.5), reading("LGR-0007", 2, 5.0), reading("LGR-0007", 2, 7.25)]),
    )
    assert answer == {"stored": 1, "duplicates": 0, "dead_lettered": 2}
    # A redelivery of the same batch: the duplicate stays a duplicate, the dead letters are kept once.
    again = await post_batch(client, who["bridge"], batch([reading("LGR-0007", 1, 4.5)]))
    assert again == {"stored": 0, "duplicates": 1, "dead_lettered": 0}
    conn = await asyncpg.connect(database_url)
    try:
        rows = await stored(conn, "LGR-0007")
        letters = await conn.fetch(
            "SELECT kind, reason, payload FROM dead_letters WHERE logger_id = 'LGR-0007' ORDER BY reading_ts"
        )
    finally:
        await conn.close()
    assert [temp for _ts, temp, _ in rows] == [4.5, 5.0]  # the first stays
    assert [r["kind"] for r in letters] == ["conflicting_reading", "conflicting_reading"]
    first, second = (json.loads(r["payload"]) for r in letters)
    assert (first["kept_temp_c"], first["temp_c"]) == (4.5, 9.5)
    assert (second["kept_temp_c"], second["temp_c"]) == (5.0, 7.25)
    assert "4.5 °C kept, 9.5 °C received" in letters[0]["reason"]


async def test_readings_of_unknown_or_inactive_loggers_become_dead_letters_once(client, database_url):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0003")
    await register(client, who["admin"], "LGR-0004", active=False)
    payload = batch(
        [
            reading("LGR-0003", 0, 4.0),
            reading("LGR-9999", 0, 4.5),
            reading("LGR-9999", 1, 4.6),
            reading("LGR-0004", 0, 5.0),
        ]
    )
    assert await post_batch(client, who["bridge"], payload) == {
        "stored": 1,
        "duplicates": 0,
        "dead_lettered": 3,
    }
    # The same readings in a new batch (the bridge restarted and the broker redelivered): no new rows.
    await post_batch(client, who["bridge"], batch(payload.readings))
    conn = await asyncpg.connect(database_url)
    try:
        letters = await conn.fetch(
            "SELECT logger_id, kind, reason, origin, reading_ts, payload FROM dead_letters "
            "ORDER BY logger_id, reading_ts"
        )
        kept = await conn.fetchval("SELECT count(*) FROM readings")
    finally:
        await conn.close()
    assert kept == 1
    assert [(r["logger_id"], r["kind"], r["origin"]) for r in letters] == [
        ("LGR-0004", "unknown_logger", "reading"),
        ("LGR-9999", "unknown_logger", "reading"),
        ("LGR-9999", "unknown_logger", "reading"),
    ]
    assert letters[1]["reason"].startswith("unknown logger LGR-9999")
    assert msgspec.json.decode(letters[1]["payload"])["temp_c"] == 4.5


async def test_bridge_dead_letters_are_stored_with_reasons_and_a_retry_does_not_double_them(
    client, database_url
):
    who = await setup_accounts(client)
    letters = [
        DeadLetter(
            topic="celltrail/v1/loggers/LGR-0005/telemetry",
            payload=b'{"logger_id": "LGR-0005", "readings": [{"ts": "2026-01-10T08:00:00Z", '
            b'"temp_c": -300}]}',
            kind="implausible",
            reason="reading 0: -300.0 °C outside -200.0..100.0 °C",
            received_at=BASE,
            logger_id="LGR-0005",
        ),
        DeadLetter(
            topic="celltrail/v1/loggers/LGR-0005/telemetry/bin",
            payload=bytes(range(20)),
            kind="crc",
            reason="CRC mismatch: frame says 0x0000, computed 0x1234",
            received_at=BASE,
            logger_id="LGR-0005",
        ),
    ]
    payload = batch(dead_letters=letters)
    assert (await post_batch(client, who["bridge"], payload))["dead_lettered"] == 2
    assert (await post_batch(client, who["bridge"], payload, as_json=True))["dead_lettered"] == 2
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT kind, reason, topic, payload, bridge_id, batch_id, origin FROM dead_letters ORDER BY id"
        )
    finally:
        await conn.close()
    assert [(r["kind"], r["reason"], r["topic"], r["payload"]) for r in rows] == [
        (d.kind, d.reason, d.topic, d.payload) for d in letters
    ]
    assert {(r["bridge_id"], r["batch_id"], r["origin"]) for r in rows} == {
        ("test-bridge", payload.batch_id, "bridge")
    }
    listed = (await client.get("/api/v1/dead-letters?logger_id=LGR-0005", headers=who["admin"])).json()
    assert [(d["kind"], base64.b64decode(d["payload"])) for d in listed] == [
        (d.kind, d.payload) for d in reversed(letters)
    ]
    assert_problem(await client.get("/api/v1/dead-letters", headers=who["coordinator"]), 403)


async def test_statuses_update_the_logger_and_an_older_status_does_not_win(client, database_url):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0006")

    def status(online: bool, minute: int, retained: bool = False, battery: int | None = None) -> LoggerStatus:
        at = BASE + timedelta(minutes=minute)
        return LoggerStatus(
            logger_id="LGR-0006",
            online=online,
            ts=at,
            received_at=at + timedelta(seconds=1),
            retained=retained,
            battery_pct=battery,
            firmware="sim/2" if battery else None,
        )

    await post_batch(client, who["bridge"], batch(statuses=[status(True, 10, battery=70)]))
    # A retained status from before (the broker replays it on subscribe) must not turn it offline.
    await post_batch(client, who["bridge"], batch(statuses=[status(False, 5, retained=True)]))
    detail = (await client.get("/api/v1/loggers/LGR-0006", headers=who["admin"])).json()
    assert (detail["online"], detail["battery_pct"], detail["reported_firmware"]) == (True, 70, "sim/2")
    assert detail["last_seen_at"].startswith("2026-01-10T08:10:01")

    await post_batch(client, who["bridge"], batch(statuses=[status(False, 20)]))
    detail = (await client.get("/api/v1/loggers/LGR-0006", headers=who["admin"])).json()
    assert (detail["online"], detail["battery_pct"]) == (False, 70)
    assert detail["status_at"].startswith("2026-01-10T08:20:00")

    # A fresh status of an unregistered logger is a dead letter; a retained one is old news, dropped.
    stray = LoggerStatus(logger_id="LGR-7777", online=True, ts=BASE, received_at=BASE)
    old = LoggerStatus(logger_id="LGR-7778", online=True, ts=BASE, received_at=BASE, retained=True)
    assert (await post_batch(client, who["bridge"], batch(statuses=[stray, old])))["dead_lettered"] == 1
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT array_agg(logger_id) FROM dead_letters") == ["LGR-7777"]
    finally:
        await conn.close()


async def test_every_stored_batch_announces_itself_in_the_outbox_by_site(client, database_url):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0007")
    await register(client, who["admin"], "LGR-0008", owner_site=None)
    payload = batch([reading("LGR-0007", m, 4.0 + m) for m in range(3)] + [reading("LGR-0008", 0, 6.0)])
    await post_batch(client, who["bridge"], payload)
    await post_batch(client, who["bridge"], payload)  # all duplicates: nothing new to announce
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT kind, sites, coi, payload FROM outbox WHERE kind = 'readings'")
    finally:
        await conn.close()
    by_sites = {tuple(r["sites"]): msgspec.json.decode(r["payload"]) for r in rows}
    assert set(by_sites) == {("CRX",), ()}
    crx = by_sites[("CRX",)]
    assert crx["batch_id"] == payload.batch_id
    assert crx["shipment_id"] is None
    [summary] = crx["loggers"]
    assert (summary["logger_id"], summary["count"], summary["last_temp_c"]) == ("LGR-0007", 3, 6.0)
    assert datetime.fromisoformat(summary["last_ts"]) == BASE + timedelta(minutes=2)


async def test_bodies_that_cannot_be_a_batch_are_refused_for_good(client):
    who = await setup_accounts(client)
    bridge = who["bridge"]
    wrong_type = await client.post(
        INGEST_PATH, content=b"x", headers={**bridge, "Content-Type": "text/plain"}
    )
    assert_problem(wrong_type, 415, "application/msgpack")
    garbage = await client.post(
        INGEST_PATH, content=b"\xc1\xc1\xc1", headers={**bridge, "Content-Type": CONTENT_TYPE}
    )
    assert_problem(garbage, 400, "not a decodable batch")
    not_json = await client.post(
        INGEST_PATH, content=b"{nope", headers={**bridge, "Content-Type": "application/json"}
    )
    assert_problem(not_json, 400)
    wrong_shape = await client.post(
        INGEST_PATH,
        content=msgspec.msgpack.encode({"batch_id": "b", "bridge_id": "x", "readings": [{"ts": 1}]}),
        headers={**bridge, "Content-Type": CONTENT_TYPE},
    )
    assert_problem(wrong_shape, 422, "ingest contract")


async def test_only_the_bridge_account_may_ingest(client):
    who = await setup_accounts(client)
    body = encode_batch(batch())
    anonymous = await client.post(INGEST_PATH, content=body, headers={"Content-Type": CONTENT_TYPE})
    assert_problem(anonymous, 401)
    for person in ("admin", "coordinator"):
        refused = await client.post(
            INGEST_PATH, content=body, headers={**who[person], "Content-Type": CONTENT_TYPE}
        )
        assert_problem(refused, 403, "bridge")
    accepted = await client.post(
        INGEST_PATH, content=body, headers={**who["bridge"], "Content-Type": CONTENT_TYPE}
    )
    assert accepted.status_code == 200
