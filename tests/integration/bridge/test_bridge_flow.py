"""The bridge against a real Mosquitto and an in-memory ingest backend: the happy paths and bad input."""

from __future__ import annotations

import json
import random
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from bridge_it_support import free_port, json_telemetry, readings_checksum, wait_for

from firmware_bridge import frame, topics
from firmware_bridge.mqtt_clients import Subscriber
from firmware_bridge.settings import load_settings


def _base() -> datetime:
    return (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


def _ids(prefix: str, count: int) -> list[str]:
    # Unique per test run: the broker is shared by the session and keeps retained messages.
    tag = uuid.uuid4().hex[:4].upper()
    return [f"LGR-{prefix}{tag}{i:02d}" for i in range(count)]


def test_json_and_binary_telemetry_arrive(start_bridge, publisher, backend):
    start_bridge()
    base = _base()
    expected: dict[tuple[str, datetime], float] = {}
    json_ids, bin_ids = _ids("J", 3), _ids("B", 3)
    for n, logger in enumerate(json_ids):
        readings = [(base + timedelta(minutes=m), round(4.0 + n + m / 10, 2)) for m in range(4)]
        publisher.publish(topics.telemetry_topic(logger), json_telemetry(logger, readings, battery_pct=80))
        expected.update({(logger, ts): t for ts, t in readings})
    for n, logger in enumerate(bin_ids):
        temps = (-19012 + n, -19010, -19005)
        payload = frame.encode(
            frame.Frame(
                logger_id=logger, seq=100, base_ts=int(base.timestamp()), interval_s=60, temps_centi=temps
            )
        )
        publisher.publish(topics.telemetry_bin_topic(logger), payload)
        expected.update({(logger, base + timedelta(minutes=i)): c / 100 for i, c in enumerate(temps)})

    wait_for(lambda: backend.reading_count() >= len(expected), what="all readings stored")
    assert backend.readings == expected
    assert backend.checksum() == readings_checksum(expected)
    assert backend.dead_letters == []


def test_duplicates_and_out_of_order_backlogs_end_as_the_exact_set(start_bridge, publisher, backend):
    start_bridge(batch_size=50)
    base = _base()
    rng = random.Random(7)
    expected: dict[tuple[str, datetime], float] = {}
    messages: list[tuple[str, bytes]] = []
    for logger in _ids("D", 4):
        readings = [(base + timedelta(seconds=30 * i), round(rng.uniform(2, 8), 2)) for i in range(120)]
        expected.update({(logger, ts): t for ts, t in readings})
        chunks = [readings[i : i + 40] for i in range(0, len(readings), 40)]
        chunks.reverse()  # newest backlog chunk first
        for chunk in chunks:
            shuffled = chunk[:]
            rng.shuffle(shuffled)
            messages.append((logger, json_telemetry(logger, shuffled)))
    # Every message twice, and the whole stream shuffled: duplicates and out-of-order delivery.
    stream = messages + messages
    rng.shuffle(stream)
    for logger, payload in stream:
        publisher.publish(topics.telemetry_topic(logger), payload)

    wait_for(lambda: backend.reading_count() >= len(expected), what="all readings stored")
    assert publisher.flush(10.0)
    wait_for(lambda: len(backend.received) >= len(expected), what="deliveries")
    assert backend.readings == expected


def test_bad_payloads_become_dead_letters_and_good_ones_still_flow(start_bridge, publisher, backend):
    bridge = start_bridge()
    good, bad = _ids("G", 1)[0], _ids("X", 1)[0]
    base = _base()
    future = datetime.now(UTC) + timedelta(hours=1)
    good_frame = frame.encode(
        frame.Frame(logger_id=bad, seq=1, base_ts=int(base.timestamp()), interval_s=0, temps_centi=(500,))
    )
    corrupted = bytearray(good_frame)
    corrupted[6] ^= 0xFF
    cases = [
        (topics.telemetry_topic(bad), b"{not json", "malformed"),
        (topics.telemetry_topic(bad), json_telemetry(bad, [(base, -300.0)]), "implausible"),
        (topics.telemetry_topic(bad), json_telemetry(bad, [(base, 150.0)]), "implausible"),
        (topics.telemetry_topic(bad), json_telemetry(bad, [(future, 5.0)]), "future_ts"),
        (topics.telemetry_topic(bad), json_telemetry(good, [(base, 5.0)]), "logger_mismatch"),
        (topics.telemetry_bin_topic(bad), bytes(corrupted), "crc"),
        (topics.telemetry_topic("LGR-lower"), json_telemetry("LGR-lower", [(base, 5.0)]), "bad_topic"),
    ]
    good_readings = {}
    for n, (topic, payload, _kind) in enumerate(cases):
        publisher.publish(topic, payload)
        ts = base + timedelta(minutes=n)
        publisher.publish(topics.telemetry_topic(good), json_telemetry(good, [(ts, 5.5)]))
        good_readings[(good, ts)] = 5.5

    wait_for(lambda: len(backend.dead_letters) >= len(cases), what="dead letters")
    wait_for(lambda: backend.reading_count() >= len(good_readings), what="good readings")
    assert backend.readings == good_readings
    by_payload = {d.payload: d for d in backend.dead_letters}
    for topic, payload, kind in cases:
        letter = by_payload[payload]
        assert (letter.topic, letter.kind) == (topic, kind)
        assert letter.reason
    kinds = Counter(kind for _, _, kind in cases)
    assert {k: bridge.metrics.dead_letters.value(kind=k) for k in kinds} == kinds


def test_statuses_are_forwarded_and_the_bridge_announces_itself(start_bridge, publisher, backend, broker_url):
    seen: list[tuple[bytes, bool]] = []
    endpoint = load_settings(env={}, mqtt_url=broker_url).mqtt_endpoint()
    watcher = Subscriber(
        endpoint,
        f"it-watch-{uuid.uuid4().hex[:6]}",
        [topics.BRIDGE_STATUS],
        lambda t, p, r: seen.append((p, r)),
    )
    assert watcher.start(10.0)
    logger = _ids("S", 1)[0]
    try:
        bridge = start_bridge()
        bridge_id = bridge.settings.client_id

        def states() -> list[bool]:
            return [json.loads(p)["online"] for p, _ in seen if json.loads(p).get("bridge_id") == bridge_id]

        wait_for(lambda: True in states(), what="online status")
        publisher.publish(
            topics.status_topic(logger), json.dumps({"online": True, "battery_pct": 55}).encode(), retain=True
        )
        wait_for(lambda: any(s.logger_id == logger for s in backend.statuses), what="logger status")
        status = next(s for s in backend.statuses if s.logger_id == logger)
        assert status.online is True
        assert status.battery_pct == 55
        bridge.stop()
        wait_for(lambda: states()[-1:] == [False], what="offline status")
    finally:
        watcher.stop()
        publisher.publish(topics.status_topic(logger), b"", retain=True)  # clear the retained message


def test_token_expiry_means_login_again(start_bridge, publisher, backend):
    start_bridge()
    logger = _ids("T", 1)[0]
    base = _base()
    publisher.publish(topics.telemetry_topic(logger), json_telemetry(logger, [(base, 4.0)]))
    wait_for(lambda: backend.reading_count() == 1, what="first reading")
    logins = backend.logins
    backend.expire_token()
    publisher.publish(
        topics.telemetry_topic(logger), json_telemetry(logger, [(base + timedelta(minutes=1), 4.1)])
    )
    wait_for(lambda: backend.reading_count() == 2, what="reading after the token expired")
    assert backend.logins == logins + 1


def test_a_batch_the_backend_refuses_is_kept_for_review(start_bridge, publisher, backend):
    bridge = start_bridge()
    backend.mode = "422"
    logger = _ids("R", 1)[0]
    publisher.publish(topics.telemetry_topic(logger), json_telemetry(logger, [(_base(), 4.0)]))
    wait_for(lambda: bridge.buffer.rejected_files() != [], what="rejected batch file")
    wait_for(lambda: bridge.forwarder.unacked == 0, what="message acknowledged")
    (rejected,) = bridge.buffer.rejected_files()
    assert "422" in rejected.with_suffix(".txt").read_text()
    assert bridge.metrics.batches.value(outcome="rejected") == 1
    # The bridge carries on once the backend accepts again.
    backend.mode = "up"
    publisher.publish(topics.telemetry_topic(logger), json_telemetry(logger, [(_base(), 4.5)]))
    wait_for(lambda: backend.reading_count() == 1, what="later reading stored")


def test_metrics_endpoint_serves_prometheus_text(start_bridge, publisher, backend):
    bridge = start_bridge(metrics_port=free_port())
    logger = _ids("M", 1)[0]
    publisher.publish(topics.telemetry_topic(logger), json_telemetry(logger, [(_base(), 4.0)]))
    wait_for(lambda: backend.reading_count() == 1, what="reading stored")
    wait_for(lambda: bridge.metrics.readings_forwarded.value() == 1, what="forwarded counter")
    with urllib.request.urlopen(f"http://127.0.0.1:{bridge.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE celltrail_bridge_readings_forwarded_total counter" in text
    assert "celltrail_bridge_readings_forwarded_total 1" in text
    assert 'celltrail_bridge_messages_total{kind="telemetry"}' in text
    assert "celltrail_bridge_forward_lag_seconds_count 1" in text


def test_mqtt_311_works_too(start_bridge, publisher, backend):
    bridge = start_bridge(mqtt_protocol="3.1.1")
    assert bridge.connection.protocol == "3.1.1"
    logger = _ids("V", 1)[0]
    publisher.publish(topics.telemetry_topic(logger), json_telemetry(logger, [(_base(), 6.0)]))
    wait_for(lambda: backend.reading_count() == 1, what="reading over MQTT 3.1.1")


def test_shared_subscription_splits_the_load_between_bridges(start_bridge, publisher, backend):
    group = f"g{uuid.uuid4().hex[:6]}"
    first, second = start_bridge(shared_group=group), start_bridge(shared_group=group)
    base = _base()
    expected = {}
    for logger in _ids("H", 10):
        for m in range(10):
            ts = base + timedelta(minutes=m)
            publisher.publish(topics.telemetry_topic(logger), json_telemetry(logger, [(ts, 5.0)]))
            expected[(logger, ts)] = 5.0
    wait_for(lambda: backend.reading_count() >= len(expected), what="all readings via two bridges")
    assert backend.readings == expected
    # Each message went to one member of the group: the two bridges together saw each message once.
    counts = [b.metrics.messages_in.value(kind="telemetry") for b in (first, second)]
    assert sum(counts) == len(expected)
    assert all(c > 0 for c in counts)
