"""Delivery to site subscriptions: signed webhooks retried with backoff and logged, e-mail for critical
alerts through a real SMTP conversation, reminders while a critical alert stays unacknowledged."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from datetime import timedelta

import msgspec
from alerting_support import alerts_of, ingest, insert_shipment, minutes_ago, readings, setup_accounts
from receivers import smtp_server, webhook_receiver

from backend.services import chain as chains
from backend.services import notify
from backend.services.excursions import evaluate_after_ingest
from backend.services.monitoring import run_periodic_checks

LOGGER = "LGR-NOTIFY1"


async def subscribe(client, headers, site: str, **body) -> dict:
    response = await client.post(f"/api/v1/sites/{site}/subscriptions", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def recent_shipment(pool, logger: str) -> str:
    """Departed an hour ago, due tomorrow: neither late nor (with readings) silent."""
    async with pool.acquire() as conn:
        shipment, _ = await insert_shipment(
            conn,
            logger,
            departure=minutes_ago(60),
            departed_at=minutes_ago(60),
            arrival=minutes_ago(-24 * 60),
        )
    return shipment


async def critical_excursion(client, who, pool, logger: str = LOGGER) -> str:
    shipment = await recent_shipment(pool, logger)
    await ingest(client, who["bridge"], readings(logger, [5.0, 5.0, 16.5, 17.0], start=minutes_ago(20)))
    await evaluate_after_ingest(pool, set(), {logger})
    return shipment


async def until_delivered(pool, settings, hooks, count: int) -> None:
    """Deliver what is due until the receiver saw `count` requests (retries wait out their backoff)."""
    deadline = time.monotonic() + 20
    while len(hooks.received) < count:
        assert time.monotonic() < deadline, f"only {len(hooks.received)} of {count} deliveries arrived"
        await notify.deliver_due(pool, settings)
        await asyncio.sleep(0.05)


async def test_a_signed_webhook_is_retried_with_backoff_and_logged(client, pool, settings):
    who = await setup_accounts(client, [LOGGER])
    fast = msgspec.structs.replace(settings, delivery_retry_base_seconds=0.3)
    with webhook_receiver(script=[500]) as hooks:
        created = await subscribe(
            client, who["coord"], "USZ", channel="webhook", target=hooks.url, min_severity="warning"
        )
        secret = created["secret"]
        assert secret
        shipment = await critical_excursion(client, who, pool)
        await run_periodic_checks(pool, fast)
        assert [status for _h, _b, status in hooks.received] == [500]
        await until_delivered(pool, fast, hooks, 2)

        headers, body, status = hooks.received[1]
        assert status == 200
        assert body == hooks.received[0][1]  # a retry sends the same bytes
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-celltrail-signature"] == expected
        assert headers["x-celltrail-event"] == "opened"
        sent = json.loads(body)
        assert sent["alert"]["shipment_id"] == shipment
        assert sent["alert"]["severity"] == "critical"

        log = await client.get(
            f"/api/v1/sites/USZ/subscriptions/{created['subscription']['id']}/deliveries",
            headers=who["coord"],
        )
        [delivery] = log.json()
        assert (delivery["status"], delivery["attempts"]) == ("sent", 2)
        assert [(a["ok"], a["status_code"]) for a in delivery["log"]] == [(False, 500), (True, 200)]

        # The episode ends: subscribers hear that too.
        await ingest(client, who["bridge"], readings(LOGGER, [5.0], start=minutes_ago(1)))
        await evaluate_after_ingest(pool, set(), {LOGGER})
        await run_periodic_checks(pool, fast)
        await until_delivered(pool, fast, hooks, 3)
        # A critical alert nobody acknowledged latches rather than resolves (issue 20, finding 2).
        assert hooks.received[2][0]["x-celltrail-event"] == "cleared_unacknowledged"


async def test_critical_alerts_are_emailed_and_warnings_are_not(client, pool, settings):
    who = await setup_accounts(client, [LOGGER, "LGR-NOTIFY2"])
    with smtp_server() as box:
        mail = msgspec.structs.replace(
            settings,
            smtp_host="127.0.0.1",
            smtp_port=box.port,
            smtp_tls="none",
            smtp_username="celltrail",
            smtp_password="smtp-secret",
            smtp_from="alerts@celltrail.test",
        )
        await subscribe(client, who["admin"], "CRX", channel="email", target="duty@hospital.test")
        warning_leg = await recent_shipment(pool, "LGR-NOTIFY2")
        await ingest(client, who["bridge"], readings("LGR-NOTIFY2", [5.0] + [9.0] * 8, start=minutes_ago(45)))
        await evaluate_after_ingest(pool, set(), {"LGR-NOTIFY2"})
        [warning] = await alerts_of(pool, warning_leg)
        assert warning.severity == "warning"
        await critical_excursion(client, who, pool)
        await run_periodic_checks(pool, mail)

        [message] = box.messages
        text = message.decode()
        assert "Subject: [Celltrail] CRITICAL opened" in text
        assert "To: duty@hospital.test" in text
        assert "From: alerts@celltrail.test" in text
        assert box.logins
        assert box.logins[0].startswith(b"AUTH PLAIN")


async def test_an_unacknowledged_critical_alert_is_reminded_until_someone_acknowledges(
    client, pool, settings
):
    who = await setup_accounts(client, [LOGGER])
    with webhook_receiver() as hooks:
        await subscribe(client, who["coord"], "CRX", channel="webhook", target=hooks.url)
        shipment = await critical_excursion(client, who, pool)
        await run_periodic_checks(pool, settings)
        assert [h["x-celltrail-event"] for h, _b, _s in hooks.received] == ["opened"]

        later = chains.now() + timedelta(minutes=settings.alert_reminder_minutes + 1)
        await run_periodic_checks(pool, settings, now=later)
        assert [h["x-celltrail-event"] for h, _b, _s in hooks.received] == ["opened", "reminder"]
        await run_periodic_checks(pool, settings, now=later)  # not due again yet
        assert len(hooks.received) == 2

        # By then the logger is also silent (a warning: not for this critical-only subscription).
        [alert] = [a for a in await alerts_of(pool, shipment) if a.kind == "temperature_high"]
        response = await client.post(
            f"/api/v1/alerts/{alert.id}/acknowledge", headers=who["coord"], json={"comment": "courier called"}
        )
        assert response.status_code == 201, response.text
        await run_periodic_checks(pool, settings, now=later + timedelta(minutes=30))
        assert [h["x-celltrail-event"] for h, _b, _s in hooks.received] == [
            "opened",
            "reminder",
            "acknowledged",
        ]
        # Acknowledged is not resolved: still above the limit, it is reminded again at the slower pace
        # for acknowledged alerts, counted from the acknowledgement or the last reminder, whichever is later.
        acknowledged_due = later + timedelta(minutes=settings.alert_acknowledged_reminder_minutes + 1)
        await run_periodic_checks(pool, settings, now=acknowledged_due)
        await run_periodic_checks(pool, settings, now=acknowledged_due)  # not due again yet
        assert [h["x-celltrail-event"] for h, _b, _s in hooks.received] == [
            "opened",
            "reminder",
            "acknowledged",
            "reminder",
        ]
        async with pool.acquire() as conn:
            events = await conn.fetch(
                """SELECT payload->>'event' AS e FROM outbox
                   WHERE kind = 'alert' AND (payload->>'id')::bigint = $1 ORDER BY id""",
                alert.id,
            )
        assert [e["e"] for e in events] == ["opened", "reminder", None, "reminder"]


async def test_a_latched_critical_alert_is_reminded_until_acknowledged_and_then_no_more(
    client, pool, settings
):
    who = await setup_accounts(client, [LOGGER])
    with webhook_receiver() as hooks:
        await subscribe(client, who["coord"], "CRX", channel="webhook", target=hooks.url)
        shipment = await critical_excursion(client, who, pool)
        # Back in range before anyone acknowledged: the critical alert latches (cleared, unacknowledged).
        await ingest(
            client, who["bridge"], readings(LOGGER, [5.0, 5.0], start=minutes_ago(4), every_minutes=1)
        )
        await evaluate_after_ingest(pool, set(), {LOGGER})
        [alert] = [a for a in await alerts_of(pool, shipment) if a.kind == "temperature_high"]
        assert alert.status == "cleared_unacknowledged"
        await run_periodic_checks(pool, settings)
        sent = len(hooks.received)
        later = chains.now() + timedelta(minutes=settings.alert_reminder_minutes + 1)
        await run_periodic_checks(pool, settings, now=later)
        assert [h["x-celltrail-event"] for h, _b, _s in hooks.received][sent:] == ["reminder"]

        response = await client.post(
            f"/api/v1/alerts/{alert.id}/acknowledge", headers=who["coord"], json={"comment": "reviewed"}
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "resolved"
        await run_periodic_checks(pool, settings, now=later + timedelta(days=1))
        assert "reminder" not in [h["x-celltrail-event"] for h, _b, _s in hooks.received][sent + 1 :]


async def test_only_coordinators_of_the_site_and_admins_manage_its_subscriptions(client, pool):
    who = await setup_accounts(client, [], people=("coord", "qa", "courier", "outsider"))
    body = {"channel": "webhook", "target": "https://hooks.example.test/celltrail"}
    for name, status in (("courier", 403), ("outsider", 403), ("qa", 403)):
        response = await client.post("/api/v1/sites/CRX/subscriptions", headers=who[name], json=body)
        assert response.status_code == status, (name, response.text)
    created = await subscribe(client, who["coord"], "CRX", **body)
    assert created["subscription"]["created_by"] == "coord"
    bad = await client.post(
        "/api/v1/sites/CRX/subscriptions", headers=who["coord"], json={"channel": "email", "target": "nobody"}
    )
    assert bad.status_code == 422
    listed = await client.get("/api/v1/sites/CRX/subscriptions", headers=who["admin"])
    assert [s["target"] for s in listed.json()] == [body["target"]]
    assert "secret" not in listed.json()[0]
    sub_id = created["subscription"]["id"]
    elsewhere = await client.post(
        f"/api/v1/sites/USZ/subscriptions/{sub_id}/deactivate", headers=who["coord"]
    )
    assert elsewhere.status_code == 404
    gone = await client.post(f"/api/v1/sites/CRX/subscriptions/{sub_id}/deactivate", headers=who["coord"])
    assert gone.json()["active"] is False
    assert (await client.get("/api/v1/sites/CRX/subscriptions", headers=who["coord"])).json() == []
    audit = await client.get("/api/v1/audit?entity=alert_subscription", headers=who["admin"])
    assert [e["action"] for e in audit.json()] == ["deactivate", "create"]
