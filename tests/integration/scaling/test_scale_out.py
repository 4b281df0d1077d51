"""Scale-out on existing engines (issue 26): two bridges in one MQTT 5 shared-subscription group and two
backend replicas (`celltrail serve` processes on ports of their own), each bridge posting to its own
replica, against one private PostgreSQL and one private Mosquitto. Every message of a logger may go to
either bridge and so either replica, so both replicas ingest and evaluate the same legs at once.

Mid-stream, one bridge and then one replica are killed with SIGKILL and started again as an operator
(or systemd) would. In the end: every reading stored exactly once, one critical alert per excursion and
no condition raised twice, every chain verifies, a live stream client on either replica (reconnecting
with Last-Event-ID to the other replica when its own dies) received every outbox event exactly once, and
a scan's idempotency key holds across replicas: a resend to the other replica replays the first answer,
the same key sent to both at once records one event, and another user or another request reusing the
key is refused there too."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from backend.embedded.ports import free_port
from backend.services import record_keys
from bench.stack import Celltrail, wait
from tests.integration.scanner.real_backend import ADMIN_PASSWORD, World, build_world
from tests.reliability.fault_stack import (
    BRIDGE_PASSWORD,
    PrivateMosquitto,
    PrivatePostgres,
    System,
    alerts_audit,
    chains_audit,
    check_counts,
    fleet,
    publisher,
    readings_audit,
    stream,
    wait_stored,
)

pytestmark = pytest.mark.timeout(240)

GROUP = "celltrail-scale"


def _replica(folder: Path, pg_url: str, broker: PrivateMosquitto, key_file: Path, n: int) -> Celltrail:
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    replica = Celltrail(
        folder,
        pg_url,
        broker.endpoint,
        bridge_password=BRIDGE_PASSWORD,
        client_id=f"scale-{n}-{uuid.uuid4().hex[:6]}",
    )
    replica.env.update(
        {
            "CELLTRAIL_ADMIN_PASSWORD": ADMIN_PASSWORD,
            # Both replicas link custody events with the same record key, as a deployment must.
            "CELLTRAIL_RECORD_KEY_FILE": str(key_file),
            "CELLTRAIL_BRIDGE_SHARED_GROUP": GROUP,
            "CELLTRAIL_BRIDGE_MQTT_PROTOCOL": "5",
            "CELLTRAIL_BRIDGE_BATCH_MS": "20",
            "CELLTRAIL_BRIDGE_RETRY_MAX_S": "0.5",
            "CELLTRAIL_BRIDGE_HTTP_TIMEOUT_S": "5",
            "CELLTRAIL_BRIDGE_SESSION_EXPIRY_S": "600",
            "CELLTRAIL_BROKER_CHECK_SECONDS": "1",
            "CELLTRAIL_HOUSEKEEPING_SECONDS": "2",
            "CELLTRAIL_BRIDGE_METRICS_PORT": str(free_port()),
        }
    )
    return replica


def _kill(replica: Celltrail, command: str) -> None:
    process = next(p for p in reversed(replica.processes) if command in p.args and p.poll() is None)  # type: ignore[operator]
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    replica.processes.remove(process)


class Listener(threading.Thread):
    """A live client: reads /api/v1/stream from its replica and, when the connection breaks, reconnects
    with Last-Event-ID to the next replica in its list."""

    def __init__(self, urls: list[str], headers: dict[str, str], after: int) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.headers = headers
        self.last = after
        self.seen: list[int] = []
        self.connections: list[str] = []

    def run(self) -> None:
        n = 0
        while True:
            url = self.urls[n % len(self.urls)]
            n += 1
            try:
                with httpx.Client(base_url=url, timeout=httpx.Timeout(5, read=30)) as client:
                    headers = {**self.headers, "Last-Event-ID": str(self.last)}
                    with client.stream("GET", "/api/v1/stream", headers=headers) as response:
                        if response.status_code != 200:
                            raise httpx.HTTPError(f"stream answered {response.status_code}")
                        self.connections.append(url)
                        for line in response.iter_lines():
                            if line.startswith("id: "):
                                self.last = int(line[4:])
                                self.seen.append(self.last)
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.2)


async def _outbox_ids(url: str, after: int) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r["id"] for r in await conn.fetch("SELECT id FROM outbox WHERE id > $1 ORDER BY id", after)]
    finally:
        await conn.close()


async def _events_of(url: str, coi: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM custody_events WHERE coi = $1", coi))
    finally:
        await conn.close()


def _counter(url: str, headers: dict[str, str], name: str) -> float:
    """A counter of a process's /metrics (the backend's or the bridge's), summed over its labels."""
    text = httpx.get(f"{url}/metrics", headers=headers, timeout=10).text
    lines = [line for line in text.splitlines() if not line.startswith("#") and name in line.split(" ")[0]]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def _labelled_bag(world: World) -> tuple[str, str]:
    coi = str(
        world.ok(
            "coord", "POST", "/api/v1/cases", 201, json={"treatment_site": "USZ-APH", "therapy": "CAR-T"}
        )["coi"]
    )
    bag = str(
        world.ok(
            "nurse",
            "POST",
            f"/api/v1/cases/{coi}/units",
            201,
            json={"kind": "APH", "product": "Apheresis", "site": "USZ-APH"},
        )["id"]
    )
    return coi, bag


def _label(bag: str, key: str) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "action": "label",
        "site": "USZ-APH",
        "codes": [bag],
        "device_time": datetime.now(UTC).isoformat(),
    }


def _post(url: str, headers: dict[str, str], body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/scans", json=body, headers=headers, timeout=30)


def _idempotency_across_replicas(world: World, a: str, b: str, pg_url: str) -> None:
    nurse = world.headers["nurse"]
    # A scan answered by replica A and resent (same key, same request) to replica B: B replays A's answer.
    coi, bag = _labelled_bag(world)
    body = _label(bag, str(uuid.uuid4()))
    first = _post(a, nurse, body)
    assert first.status_code == 201, first.text
    assert first.json()["outcome"] == "accepted"
    events = asyncio.run(_events_of(pg_url, coi))
    again = _post(b, nurse, body)
    assert again.status_code == first.status_code
    assert again.json() == first.json()
    assert asyncio.run(_events_of(pg_url, coi)) == events
    # The key reused on the other replica by another user, or by the same user for another request, is
    # refused there as it would be on the first: the key is the database's, not a replica's memory.
    other = world.headers["courier1"]
    assert _post(b, other, body).status_code == 409
    _, second_bag = _labelled_bag(world)
    changed = {**body, "codes": [second_bag]}
    refused = _post(b, nurse, changed)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert asyncio.run(_events_of(pg_url, coi)) == events

    # The same scan sent to both replicas at the same moment (a client retrying through a balancer):
    # one event, both answered with it.
    coi, bag = _labelled_bag(world)
    before = asyncio.run(_events_of(pg_url, coi))
    body = _label(bag, str(uuid.uuid4()))
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda url: _post(url, nurse, body), [a, b]))
    assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
    assert answers[0].json()["event_id"] == answers[1].json()["event_id"]
    assert asyncio.run(_events_of(pg_url, coi)) == before + 1


def test_two_bridges_and_two_replicas_lose_and_double_nothing(server_dir: Path) -> None:
    os.chmod(server_dir, 0o755)
    pg = PrivatePostgres(server_dir / "pg")
    broker = PrivateMosquitto(server_dir / "mqtt")
    pg.start()
    pg.create()
    broker.start()
    key_file = server_dir / "keys" / "record.key"
    # The audits verify the chains with the key the replicas link with.
    record_keys.configure(record_keys.add_key(key_file))
    a = _replica(server_dir / "a", pg.url, broker, key_file, 1)
    b = _replica(server_dir / "b", pg.url, broker, key_file, 2)
    client = httpx.Client(base_url=a.url, timeout=30)
    try:
        a.start_backend()
        world = build_world(client)
        world.ok(
            "admin",
            "POST",
            "/api/v1/users",
            201,
            json={
                "username": "bridge",
                "full_name": "Bridge",
                "password": BRIDGE_PASSWORD,
                "roles": ["bridge"],
                "sites": ["CTA"],
            },
        )
        b.start_backend()
        a.start_bridge(broker.endpoint)
        b.start_bridge(broker.endpoint)
        ships = fleet(System(server_dir, pg.url, broker.endpoint, a, world), 4)
        shipments = list(ships.shipments.values())

        start = max([0, *asyncio.run(_outbox_ids(pg.url, 0))])
        listeners = [
            Listener([a.url, b.url], world.headers["admin"], start),
            Listener([b.url, a.url], world.headers["admin"], start),
        ]
        for listener in listeners:
            listener.start()

        messages, expected = stream(ships, per_logger=300, per_message=5, spike_at=0.8)
        third = len(messages) // 3
        with publisher(broker.endpoint) as pub:
            # 1. A third published; with some of it stored, bridge B is killed and the next third is
            # published while it is dead (the broker keeps its share for its session).
            for topic, payload in messages[:third]:
                pub.publish(topic, payload)
            assert pub.flush(30)
            wait_stored(pg.url, ships.loggers, len(expected) // 6, 60, "readings stored before the kill")
            _kill(b, "bridge")
            for topic, payload in messages[third : 2 * third]:
                pub.publish(topic, payload)
            assert pub.flush(30)
            b.start_bridge(broker.endpoint)

            # 2. Replica A killed mid-stream: bridge A keeps its batches (broker session, disk buffer)
            # and retries; its live client reconnects to replica B; scans go on through replica B.
            for topic, payload in messages[2 * third : 2 * third + third // 2]:
                pub.publish(topic, payload)
            _kill(a, "serve")
            for topic, payload in messages[2 * third + third // 2 :]:
                pub.publish(topic, payload)
            assert pub.flush(30)
            _, bag = _labelled_bag(World(httpx.Client(base_url=b.url, timeout=30), world.headers))
            assert _post(b.url, world.headers["nurse"], _label(bag, str(uuid.uuid4()))).status_code == 201
            a.start_backend()

        wait_stored(pg.url, ships.loggers, len(expected), 90, "every reading after the kills")
        # Each leg's excursion evaluated by whichever replica stored its readings; wait for the alerts.
        wait(
            lambda: asyncio.run(alerts_audit(pg.url, shipments))["alerts"] >= len(shipments),
            60,
            "one alert per shipment",
        )
        _idempotency_across_replicas(world, a.url, b.url, pg.url)

        counts = {
            **asyncio.run(readings_audit(pg.url, expected)),
            **asyncio.run(alerts_audit(pg.url, shipments)),
            **asyncio.run(chains_audit(pg.url)),
        }
        check_counts(counts, len(expected))
        assert counts["alerts"] == len(shipments)

        # The shared subscription split the traffic: bridge A (never killed, so its counter covers the
        # whole run) decoded some of the readings, but not all of them, and replica B stored some.
        decoded_by_a = _counter(
            f"http://127.0.0.1:{a.env['CELLTRAIL_BRIDGE_METRICS_PORT']}", {}, "readings_decoded"
        )
        assert 0 < decoded_by_a < len(expected), decoded_by_a
        assert _counter(b.url, world.headers["admin"], "celltrail_ingest_readings_stored_total") > 0
        events = asyncio.run(_outbox_ids(pg.url, start))
        assert events
        wait(
            lambda: all(set(events) <= set(listener.seen) for listener in listeners),
            30,
            "every live client to receive every event",
        )
        for listener in listeners:
            assert len(listener.seen) == len(set(listener.seen)), "an event delivered twice"
        # Listener A lost its replica and went on on the other one.
        assert a.url in listeners[0].connections
        assert b.url in listeners[0].connections
        for replica in (a, b):
            assert httpx.get(f"{replica.url}/healthz", timeout=5).status_code == 200
    finally:
        for replica in (a, b):
            replica.stop()
        client.close()
        broker.stop()
        pg.stop("immediate")
