"""Issue 20, alarm states on real PostgreSQL through the API: a critical excursion after a closed warning
raises (finding 1), a critical alert that ends unacknowledged latches on the board and the open list until
acknowledged (finding 2), and acknowledgements are an append-only history in the audit trail (finding 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerting_support import BASE, alerts_of, ingest, insert_shipment, readings, setup_accounts

from backend.domain.access import Principal, Role
from backend.services import board
from backend.services.excursions import evaluate_after_ingest

LOGGER = "LGR-ALST01"
ADMIN = Principal(1, "admin", "Admin", frozenset({Role.ADMIN}), frozenset())


async def _board_severity(pool, shipment: str) -> str | None:
    lines = await board.active_lines(pool, ADMIN, board.Filters(), datetime.now(UTC))
    [line] = [line for line in lines if line.row.id == shipment]
    return line.severity


async def _alert_events(pool, shipment: str) -> list[dict]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE kind = 'alert' AND payload->>'shipment_id' = $1 ORDER BY id",
            shipment,
        )
    return [r["payload"] for r in rows]


async def test_finding_1_twelve_degrees_closed_then_twenty_raises_a_critical_alert_and_a_stream_event(
    client, pool
):
    who = await setup_accounts(client, [LOGGER])
    async with pool.acquire() as conn:
        shipment, _coi = await insert_shipment(conn, LOGGER)
    # 5-minute samples: 12 °C long enough to spend the 30-minute budget: a warning opens.
    await ingest(client, who["bridge"], readings(LOGGER, [5.0] * 2 + [12.0] * 8))
    await evaluate_after_ingest(pool, set(), {LOGGER})
    [warning] = await alerts_of(pool, shipment)
    assert (warning.severity, warning.status) == ("warning", "open")

    closed = await client.post(
        f"/api/v1/alerts/{warning.id}/close", headers=who["coord"], json={"reason": "box re-iced, watching"}
    )
    assert closed.status_code == 201, closed.text
    # Then 20 °C for 12 minutes (above "critical above 15 °C at once"), still the same excursion.
    late = BASE + timedelta(minutes=50)
    await ingest(client, who["bridge"], readings(LOGGER, [20.0] * 4, start=late, every_minutes=4))
    await evaluate_after_ingest(pool, set(), {LOGGER})

    first, critical = await alerts_of(pool, shipment)
    assert (first.id, first.status, first.severity) == (warning.id, "closed", "warning")
    assert (critical.severity, critical.status, critical.kind) == ("critical", "open", "temperature_high")
    assert critical.started_at == warning.started_at  # the same excursion
    assert critical.peak_value == 20.0
    events = await _alert_events(pool, shipment)
    raised = [e for e in events if e.get("id") == critical.id]
    assert raised[0]["event"] == "opened"
    assert raised[0]["severity"] == "critical"
    assert raised[0]["escalates"] == warning.id
    assert await _board_severity(pool, shipment) == "critical"

    # Further readings of the same excursion update that alert; nothing opens again.
    await ingest(
        client, who["bridge"], readings(LOGGER, [21.0, 5.0, 5.0], start=late + timedelta(minutes=16))
    )
    await evaluate_after_ingest(pool, set(), {LOGGER})
    assert [a.id for a in await alerts_of(pool, shipment)] == [warning.id, critical.id]


async def test_finding_2_a_critical_alert_that_ends_unacknowledged_stays_until_acknowledged(client, pool):
    who = await setup_accounts(client, [LOGGER])
    async with pool.acquire() as conn:
        shipment, _coi = await insert_shipment(conn, LOGGER)
    # 16 °C is critical at once; the excursion ends by itself ten minutes later.
    await ingest(client, who["bridge"], readings(LOGGER, [5.0] * 3 + [16.0] * 2 + [5.0] * 3))
    await evaluate_after_ingest(pool, set(), {LOGGER})
    [alert] = await alerts_of(pool, shipment)
    assert (alert.severity, alert.status) == ("critical", "cleared_unacknowledged")
    assert alert.ended_at == BASE + timedelta(minutes=25)
    # One batch held the whole excursion: the alert is announced already latched.
    assert [(e["event"], e["status"]) for e in await _alert_events(pool, shipment)] == [
        ("opened", "cleared_unacknowledged")
    ]

    # Still on the board, in the open list and on the alerts page.
    assert await _board_severity(pool, shipment) == "critical"
    listed = await client.get(
        "/api/v1/alerts",
        headers=who["coord"],
        params={"status": ["open", "acknowledged", "cleared_unacknowledged"]},
    )
    assert alert.id in [a["id"] for a in listed.json()]
    # A new excursion of the same kind may open meanwhile: the latched alert holds no condition.
    await ingest(client, who["bridge"], readings(LOGGER, [16.0], start=BASE + timedelta(minutes=40)))
    await evaluate_after_ingest(pool, set(), {LOGGER})
    latched, second = await alerts_of(pool, shipment)
    assert (latched.id, latched.status, second.status) == (alert.id, "cleared_unacknowledged", "open")

    acked = await client.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", headers=who["coord"], json={"comment": "seen, QA informed"}
    )
    assert acked.status_code == 201, acked.text
    body = acked.json()
    assert body["status"] == "resolved"
    assert body["ended_at"] is not None
    [entry] = body["acknowledgements"]
    assert (entry["by"], entry["status_before"], entry["status_after"]) == (
        "coord",
        "cleared_unacknowledged",
        "resolved",
    )
    again = await client.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", headers=who["coord"], json={"comment": "again"}
    )
    assert again.status_code == 409


async def test_finding_6_a_second_acknowledgement_adds_to_the_history_and_the_audit_trail(client, pool):
    who = await setup_accounts(client, [LOGGER], people=("bridge", "coord", "qa"))
    async with pool.acquire() as conn:
        shipment, _coi = await insert_shipment(conn, LOGGER)
    await ingest(client, who["bridge"], readings(LOGGER, [5.0] * 2 + [9.0] * 8))
    await evaluate_after_ingest(pool, set(), {LOGGER})
    [alert] = await alerts_of(pool, shipment)

    one = await client.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", headers=who["coord"], json={"comment": "courier called"}
    )
    two = await client.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", headers=who["qa"], json={"comment": "QA review opened"}
    )
    assert one.status_code == two.status_code == 201, two.text
    body = two.json()
    assert body["status"] == "acknowledged"
    # The first acknowledgement is kept as it was; the second is added after it.
    assert (body["acknowledged_by"], body["ack_comment"]) == ("coord", "courier called")
    assert [(k["by"], k["comment"]) for k in body["acknowledgements"]] == [
        ("coord", "courier called"),
        ("qa", "QA review opened"),
    ]
    assert body["acknowledgements"][0]["at"] <= body["acknowledgements"][1]["at"]
    async with pool.acquire() as conn:
        trail = await conn.fetch(
            """SELECT actor_name, action, reason, sites FROM audit_log
               WHERE entity = 'alert' AND entity_id = $1 ORDER BY id""",
            str(alert.id),
        )
        refused = None
        try:
            await conn.execute("DELETE FROM alert_acknowledgements WHERE alert_id = $1", alert.id)
        except Exception as exc:
            refused = exc
    assert [(t["actor_name"], t["action"], t["reason"]) for t in trail] == [
        ("coord", "acknowledge", "courier called"),
        ("qa", "acknowledge", "QA review opened"),
    ]
    assert set(trail[0]["sites"]) == {"CRX", "USZ"}
    assert refused is not None  # the history is append-only
