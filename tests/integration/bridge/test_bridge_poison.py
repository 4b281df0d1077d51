"""Issue 20, finding 10, over a real Mosquitto with per-logger credentials: one logger floods its own
topic with more deep-nested payloads than the bridge's in-flight window; every one becomes a dead letter
and is acknowledged, and the valid readings of another logger published after the flood are all stored,
also by a restarted bridge, which gets nothing of the flood delivered again."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from bridge_it_support import bridge_settings, json_telemetry, private_mosquitto, wait_for

from firmware_bridge import topics
from firmware_bridge.bridge import Bridge
from firmware_bridge.mqtt_clients import Publisher
from firmware_bridge.settings import load_settings

pytestmark = pytest.mark.slow

BRIDGE_USER, POISON, GOOD = "bridge-user", "LGR-POISON01", "LGR-GOOD01"
PASSWORDS = {BRIDGE_USER: "bridge-broker-secret", POISON: "poison-secret", GOOD: "good-secret"}
# The finding's payload: about 2 KB, nested 1,000 levels deep.
DEEP = b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
FLOOD = 10_500  # more than the bridge's in-flight window (10,000)


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is needed for per-logger credentials")
    folder = tmp_path_factory.mktemp("poison-broker")
    passwd = folder / "passwd"
    for n, (user, password) in enumerate(PASSWORDS.items()):
        subprocess.run(
            ["mosquitto_passwd", "-b", *(["-c"] if n == 0 else []), str(passwd), user, password], check=True
        )
    passwd.chmod(0o600)
    # Each logger may publish on its own topics only; the bridge reads them all.
    acl = folder / "acl"
    acl.write_text(
        f"user {BRIDGE_USER}\ntopic readwrite celltrail/#\n\npattern write celltrail/v1/loggers/%u/#\n"
    )
    acl.chmod(0o600)
    with private_mosquitto(folder, f"password_file {passwd}\nacl_file {acl}") as broker:
        yield broker.url


def _logger_publisher(url: str, logger_id: str) -> Publisher:
    endpoint = load_settings(
        env={}, mqtt_url=url, mqtt_username=logger_id, mqtt_password=PASSWORDS[logger_id]
    ).mqtt_endpoint()
    publisher = Publisher(endpoint, f"{logger_id}-{uuid.uuid4().hex[:6]}", max_outstanding=2_000)
    assert publisher.start(10.0), f"{logger_id} could not connect with its own credentials"
    return publisher


def test_finding_10_a_poison_flood_from_one_logger_stops_no_other(secured_broker, backend, tmp_path):
    settings = bridge_settings(
        secured_broker,
        backend.url,
        tmp_path / "buffer",
        mqtt_username=BRIDGE_USER,
        mqtt_password=PASSWORDS[BRIDGE_USER],
        batch_size=500,
    )
    bridge = Bridge(settings)
    bridge.start()
    poison = _logger_publisher(secured_broker, POISON)
    good = _logger_publisher(secured_broker, GOOD)
    base = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    try:
        assert bridge.connection.wait_subscribed(10.0), "bridge did not subscribe"
        started = time.monotonic()
        for _ in range(FLOOD):
            poison.publish(topics.telemetry_topic(POISON), DEEP)
        assert poison.flush(60.0), "the broker did not take the flood"
        expected = {}
        for minute in range(60):
            ts = base + timedelta(minutes=minute)
            good.publish(topics.telemetry_topic(GOOD), json_telemetry(GOOD, [(ts, 4.0 + minute / 100)]))
            expected[(GOOD, ts)] = 4.0 + minute / 100
        wait_for(
            lambda: backend.reading_count() >= len(expected), timeout=90, what="the good logger's readings"
        )
        wait_for(
            lambda: len(backend.dead_letters) >= FLOOD, timeout=90, what="every poison message dead-lettered"
        )
        elapsed = time.monotonic() - started
        assert backend.readings == expected
        assert len(backend.dead_letters) == FLOOD
        assert {(d.kind, d.logger_id) for d in backend.dead_letters} == {("too_deep", POISON)}
        assert backend.dead_letters[0].payload == DEEP
        print(f"{FLOOD} poison messages and 60 readings through the bridge in {elapsed:.1f} s")
    finally:
        bridge.stop()

    # The same session again: had any poison message stayed unacknowledged, the broker would deliver it
    # again now and hold the new reading behind it.
    again = Bridge(
        bridge_settings(
            secured_broker,
            backend.url,
            tmp_path / "buffer-2",
            mqtt_username=BRIDGE_USER,
            mqtt_password=PASSWORDS[BRIDGE_USER],
            client_id=settings.client_id,
        )
    )
    again.start()
    try:
        assert again.connection.wait_subscribed(10.0), "restarted bridge did not subscribe"
        late = base + timedelta(minutes=90)
        good.publish(topics.telemetry_topic(GOOD), json_telemetry(GOOD, [(late, 5.5)]))
        wait_for(lambda: (GOOD, late) in backend.readings, what="a reading after the restart")
        time.sleep(0.5)  # a redelivered flood would arrive with it; give it a moment to show
        assert len(backend.dead_letters) == FLOOD
    finally:
        again.stop()
        poison.stop()
        good.stop()
