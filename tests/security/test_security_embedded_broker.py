"""The embedded broker of `celltrail up` is secured like production (issue 18): no anonymous client (the
forged -20 °C reading of the finding came from one), a generated password per user kept 0600 in its
directory, and the per-logger ACL of deploy/mosquitto/acl, under Mosquitto and under the amqtt fallback."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from backend.embedded.mqtt import ACL, EmbeddedBroker, acl_allows, parse_acl, read_credentials
from backend.services.broker_probe import probe
from tests.security.test_security_mqtt_acl import ACCEPTED, NOT_AUTHORIZED, WAIT, Session

ROOT = Path(__file__).resolve().parents[2]
LOGGERS = ["LGR-0001", "LGR-0002"]
needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto_passwd") is None, reason="needs the mosquitto package (make system-packages)"
)


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path / "mqtt", loggers=LOGGERS)
    if broker.kind != "mosquitto":
        pytest.skip("needs the mosquitto package (make system-packages)")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def amqtt_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path / "mqtt", loggers=LOGGERS, mosquitto=False).start()
    try:
        yield broker
    finally:
        broker.stop()


def test_the_embedded_acl_is_the_production_acl() -> None:
    assert (ROOT / "deploy" / "mosquitto" / "acl").read_text() == ACL
    rules = parse_acl(ACL)
    assert acl_allows(rules, "LGR-0001", "celltrail/v1/loggers/LGR-0001/telemetry", "write")
    assert not acl_allows(rules, "LGR-0001", "celltrail/v1/loggers/LGR-0002/telemetry", "write")
    assert not acl_allows(rules, "LGR-0001", "celltrail/v1/loggers/+/telemetry", "read")
    assert not acl_allows(rules, None, "celltrail/v1/loggers/LGR-0001/telemetry", "write")
    assert acl_allows(rules, "bridge", "celltrail/v1/loggers/+/telemetry", "read")
    assert not acl_allows(rules, "bridge", "celltrail/v1/loggers/LGR-0001/telemetry", "write")
    assert acl_allows(rules, "healthcheck", "celltrail/v1/health", "write")


def _private(path: Path) -> bool:
    return path.stat().st_mode & 0o077 == 0


@needs_mosquitto
def test_credentials_are_generated_private_and_kept(mosquitto_broker: EmbeddedBroker) -> None:
    directory = mosquitto_broker.directory
    credentials = mosquitto_broker.credentials()
    assert set(credentials) == {"bridge", "healthcheck", *LOGGERS}
    assert len(set(credentials.values())) == len(credentials)
    # The simulator's file holds the loggers' passwords only.
    assert read_credentials(mosquitto_broker.logger_credentials_file) == {
        lg: credentials[lg] for lg in LOGGERS
    }
    hashed = (directory / "passwd").read_text()
    assert all(secret not in hashed for secret in credentials.values())
    for name in ("credentials", "logger-credentials", "passwd", "acl", "mosquitto.conf"):
        assert _private(directory / name), name
    conf = (directory / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert "acl_file" in conf
    # A restart keeps every password (loggers and the bridge keep working).
    mosquitto_broker.stop()
    again = EmbeddedBroker(directory, loggers=LOGGERS).start()
    try:
        assert again.credentials() == credentials
    finally:
        again.stop()


@needs_mosquitto
def test_an_anonymous_client_is_refused(mosquitto_broker: EmbeddedBroker) -> None:
    ok, detail = asyncio.run(probe(mosquitto_broker.url))
    assert not ok
    assert "refused" in detail
    assert not asyncio.run(probe(mosquitto_broker.url, "LGR-0001", "not-its-password"))[0]
    assert not asyncio.run(probe(mosquitto_broker.url, "intruder", "anything"))[0]
    ok, detail = asyncio.run(
        probe(mosquitto_broker.url, "healthcheck", mosquitto_broker.password("healthcheck"))
    )
    assert ok, detail


@needs_mosquitto
def test_a_logger_cannot_publish_as_another_logger(mosquitto_broker: EmbeddedBroker) -> None:
    port = mosquitto_broker.port
    bridge = Session(port, "bridge", mosquitto_broker.password("bridge"))
    logger = Session(port, "LGR-0001", mosquitto_broker.password("LGR-0001"))
    try:
        bridge.client.subscribe("celltrail/v1/loggers/+/telemetry", qos=1)
        assert bridge.subscribed.wait(WAIT)
        forged = logger.publish_verdict("celltrail/v1/loggers/LGR-0002/telemetry")
        own = logger.publish_verdict("celltrail/v1/loggers/LGR-0001/telemetry")
        assert bridge.received.wait(WAIT)
    finally:
        for session in (bridge, logger):
            session.close()
    assert forged == NOT_AUTHORIZED
    assert own in ACCEPTED
    assert bridge.messages == ["celltrail/v1/loggers/LGR-0001/telemetry"]


# -- amqtt (machines without Mosquitto; MQTT 3.1.1 only) ------------------------------------------------


def _v3_client(port: int, user: str | None, password: str | None) -> tuple[mqtt.Client, int]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"amqtt-{user}-{time.monotonic_ns()}")
    if user is not None:
        client.username_pw_set(user, password)
    result: list[int] = []
    connected = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        result.append(reason_code.value)
        connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    connected.wait(WAIT)
    return client, result[0] if result else -1


def test_amqtt_refuses_anonymous_clients_and_applies_the_acl(amqtt_broker: EmbeddedBroker) -> None:
    port = amqtt_broker.port
    anonymous, code = _v3_client(port, None, None)
    anonymous.loop_stop()
    assert code != 0
    wrong, code = _v3_client(port, "LGR-0001", "not-its-password")
    wrong.loop_stop()
    assert code != 0

    received: list[str] = []
    bridge, code = _v3_client(port, "bridge", amqtt_broker.password("bridge"))
    assert code == 0
    subscribed = threading.Event()
    bridge.on_message = lambda _c, _u, message: received.append(message.topic)
    bridge.on_subscribe = lambda *_args: subscribed.set()
    bridge.subscribe("celltrail/v1/loggers/+/telemetry", qos=1)
    assert subscribed.wait(WAIT)
    logger, code = _v3_client(port, "LGR-0001", amqtt_broker.password("LGR-0001"))
    assert code == 0
    logger.publish("celltrail/v1/loggers/LGR-0002/telemetry", b"{}", qos=1).wait_for_publish(WAIT)
    logger.publish("celltrail/v1/loggers/LGR-0001/telemetry", b"{}", qos=1).wait_for_publish(WAIT)
    deadline = time.monotonic() + WAIT
    while "celltrail/v1/loggers/LGR-0001/telemetry" not in received and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # the same chance for a wrongly forwarded message to arrive
    for client in (logger, bridge):
        client.loop_stop()
        client.disconnect()
    assert received == ["celltrail/v1/loggers/LGR-0001/telemetry"]
