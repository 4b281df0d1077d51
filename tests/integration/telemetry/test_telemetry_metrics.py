"""`GET /metrics`: the ingest counters in the Prometheus text format, for admins and the bridge."""

from __future__ import annotations

import re

from telemetry_support import BASE, batch, post_batch, reading, register, setup_accounts

from firmware_bridge.ingest_contract import DeadLetter
from tests.integration.helpers import assert_problem


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} missing from:\n{text}"
    return float(match.group(1))


async def test_metrics_count_readings_duplicates_dead_letters_and_latency(client):
    who = await setup_accounts(client)
    await register(client, who["admin"], "LGR-0700")
    readings = [reading("LGR-0700", m, 4.0) for m in range(5)]
    broken = DeadLetter(
        topic="celltrail/v1/loggers/LGR-0700/telemetry",
        payload=b"{",
        kind="malformed",
        reason="bad JSON",
        received_at=BASE,
    )
    await post_batch(client, who["bridge"], batch(readings, dead_letters=[broken]))
    await post_batch(client, who["bridge"], batch([*readings[:2], reading("LGR-0999", 0, 1.0)]))

    response = await client.get("/metrics", headers=who["bridge"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert _value(text, "celltrail_ingest_readings_stored_total") == 5
    assert _value(text, "celltrail_ingest_readings_duplicate_total") == 2
    assert _value(text, 'celltrail_ingest_dead_letters_total{kind="malformed"}') == 1
    assert _value(text, 'celltrail_ingest_dead_letters_total{kind="unknown_logger"}') == 1
    assert _value(text, 'celltrail_ingest_batches_total{outcome="stored"}') == 2
    assert _value(text, "celltrail_ingest_duration_seconds_count") == 2
    assert _value(text, 'celltrail_ingest_duration_seconds_bucket{le="+Inf"}') == 2
    assert _value(text, "celltrail_ingest_newest_received_timestamp_seconds") == (BASE.timestamp() + 4 * 60)
    assert _value(text, "celltrail_ingest_last_lag_seconds") > 0
    assert (await client.get("/metrics", headers=who["admin"])).status_code == 200


async def test_metrics_need_an_admin_or_the_bridge(client):
    who = await setup_accounts(client)
    assert_problem(await client.get("/metrics"), 401)
    assert_problem(await client.get("/metrics", headers=who["coordinator"]), 403)
