"""A scan's outcome answered over HTTP through the refusal table, and answered again, identically, for a
resend: from an outcome remembered as it is, and from an answer remembered as HTTP before outcomes were."""

from __future__ import annotations

import json
import uuid

import asyncpg

from tests.integration.journey import World, build_world
from tests.integration.test_custody_refusals import _case_with_packed_shipment, refused


def _same(first, again) -> None:
    assert again.status_code == first.status_code
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.json() == first.json()


async def _as_http_answers(database_url: str, answers: dict[str, object]) -> None:
    """Rewrites remembered outcomes as the HTTP status and body they were answered with."""
    conn = await asyncpg.connect(database_url)
    try:
        for key, response in answers.items():
            await conn.execute(
                "UPDATE scan_requests SET status_code = $2, response = $3::jsonb WHERE idempotency_key = $1",
                key,
                response.status_code,  # type: ignore[attr-defined]
                json.dumps(response.json()),  # type: ignore[attr-defined]
            )
    finally:
        await conn.close()


async def _scans(world: World, ship: str, aph: str, keys: dict[str, str]) -> dict[str, object]:
    return {
        keys["packed"]: await world.scan("nurse", "pack", "USZ-APH", ship, aph, key=keys["packed"]),
        # A conflict (409), and the variant of `wrong_site` the table answers as forbidden (403).
        keys["early"]: await world.scan(
            "pharm", "store", "USZ", aph, storage_location="X", key=keys["early"]
        ),
        keys["unassigned"]: await world.scan("mfg", "pack", "USZ-APH", ship, aph, key=keys["unassigned"]),
        # Several shipments in one scan: the variant of `unexpected_item` answered as malformed (422).
        keys["several"]: await world.scan(
            "nurse", "pack", "USZ-APH", ship, "SHP-2026-999999", key=keys["several"]
        ),
    }


async def test_outcomes_are_answered_through_the_table_and_again_for_a_resend(client, database_url):
    world = await build_world(client)
    _coi, aph, ship = await _case_with_packed_shipment(world)
    keys = {name: str(uuid.uuid4()) for name in ("packed", "early", "unassigned", "several")}
    first = await _scans(world, ship, aph, keys)
    assert first[keys["packed"]].status_code == 201  # type: ignore[attr-defined]
    refused(first[keys["unassigned"]], 403, "wrong_site")
    refused(first[keys["several"]], 422, "unexpected_item")
    body = refused(first[keys["early"]], 409, "out_of_order")
    assert body["title"] == "STOP — scan refused"
    assert body["type"] == "urn:celltrail:problem:" + body["refusal"].replace("_", "-")
    assert set(body) == {"type", "title", "status", "detail", "errors", "refusal", "event_id", "coi"}
    again = await _scans(world, ship, aph, keys)
    for key in keys.values():
        _same(first[key], again[key])


async def test_answers_remembered_as_http_are_answered_the_same(client, database_url):
    world = await build_world(client)
    _coi, aph, ship = await _case_with_packed_shipment(world)
    keys = {name: str(uuid.uuid4()) for name in ("packed", "early", "unassigned", "several")}
    first = await _scans(world, ship, aph, keys)
    await _as_http_answers(database_url, first)
    again = await _scans(world, ship, aph, keys)
    for key in keys.values():
        _same(first[key], again[key])


async def test_a_key_that_answered_something_else_is_refused_as_another_request(client, database_url):
    world = await build_world(client)
    _coi, aph, ship = await _case_with_packed_shipment(world)
    key = str(uuid.uuid4())
    conn = await asyncpg.connect(database_url)
    try:
        nurse = await conn.fetchval("SELECT id FROM users WHERE username = 'nurse'")
        # What the bedside check remembers for its key: not a scan's answer.
        await conn.execute(
            """INSERT INTO scan_requests (idempotency_key, actor_id, status_code, response)
               VALUES ($1, $2, 200, '{"match": true}'::jsonb)""",
            key,
            nurse,
        )
    finally:
        await conn.close()
    response = await world.scan("nurse", "pack", "USZ-APH", ship, aph, key=key)
    assert response.status_code == 422, response.text
    assert "different request" in response.json()["detail"]
