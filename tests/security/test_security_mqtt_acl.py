"""The production broker configuration against a logger with stolen or wrong credentials, beyond
tests/integration/test_mosquitto_acl.py (anonymous refused, publish confined to the logger's own topic):
a wrong password is refused, a logger can read nothing, and may not publish another logger's binary
telemetry or status, nor the bridge's status. MQTT 5 acknowledgements carry the broker's verdict, so
nothing here waits for a message that should not come."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.integration import test_mosquitto_acl as acl

# The production configuration under a real Mosquitto, started by the fixture of the integration test.
pytestmark = acl.pytestmark
secured_broker = acl.secured_broker
PASSWORDS = acl.PASSWORDS
NOT_AUTHORIZED = 0x87
ACCEPTED = {0x00, 0x10}  # success, or success with no matching subscriber
WAIT = 10


class Session:
    """An MQTT 5 client that records the broker's answers."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"sec-{user}-{id(self)}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(user, password)
        self.connected = threading.Event()
        self.connect_code = -1
        self.suback: list[int] = []
        self.subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.messages: list[str] = []
        self.received = threading.Event()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(WAIT)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connect_code = reason.value
        self.connected.set()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, reasons: Any, _p: Any) -> None:
        self.suback = [r.value for r in reasons]
        self.subscribed.set()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        self.messages.append(message.topic)
        self.received.set()

    def publish_verdict(self, topic: str) -> int:
        """The PUBACK reason code of one QoS 1 publish (0 accepted, 0x87 not authorised)."""
        answered = threading.Event()
        verdict: list[int] = []

        def on_publish(_c: Any, _u: Any, _mid: Any, reason: Any, _p: Any) -> None:
            verdict.append(reason.value)
            answered.set()

        self.client.on_publish = on_publish
        self.client.publish(topic, b"{}", qos=1, properties=Properties(PacketTypes.PUBLISH))
        assert answered.wait(WAIT)
        return verdict[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_wrong_password_is_refused(secured_broker):
    session = Session(secured_broker, "LGR-0001", "not-the-logger-secret")
    session.close()
    assert session.connect_code != 0


def test_a_logger_may_read_nothing(secured_broker):
    # Mosquitto grants the subscription and applies the read ACL at delivery: so another logger's
    # reading is published, the bridge (allowed to read) receives it, and the logger must not.
    bridge = Session(secured_broker, "bridge", PASSWORDS["bridge"])
    spy = Session(secured_broker, "LGR-0001", PASSWORDS["LGR-0001"])
    other = Session(secured_broker, "LGR-0002", PASSWORDS["LGR-0002"])
    try:
        for session in (bridge, spy):
            session.client.subscribe("celltrail/v1/loggers/+/telemetry", qos=1)
            assert session.subscribed.wait(WAIT)
        assert other.publish_verdict("celltrail/v1/loggers/LGR-0002/telemetry") in ACCEPTED
        assert bridge.received.wait(WAIT)
        # The broker writes a connection's packets in order: once the spy has the answer to a publish
        # made after the reading was routed, a delivery of that reading would already have arrived.
        assert spy.publish_verdict("celltrail/v1/loggers/LGR-0001/telemetry") in ACCEPTED
    finally:
        for session in (bridge, spy, other):
            session.close()
    assert bridge.messages[0] == "celltrail/v1/loggers/LGR-0002/telemetry"
    assert spy.messages == []


def test_a_logger_may_publish_only_its_own_telemetry_and_status(secured_broker):
    logger = Session(secured_broker, "LGR-0001", PASSWORDS["LGR-0001"])
    try:
        own = [
            logger.publish_verdict(f"celltrail/v1/loggers/LGR-0001/{suffix}")
            for suffix in ("telemetry", "telemetry/bin", "status")
        ]
        foreign = [
            logger.publish_verdict(topic)
            for topic in (
                "celltrail/v1/loggers/LGR-0002/telemetry/bin",
                "celltrail/v1/loggers/LGR-0002/status",
                "celltrail/v1/bridge/status",
                "celltrail/v1/health",
                "celltrail/v1/loggers/LGR-0001/telemetry/extra",
            )
        ]
    finally:
        logger.close()
    # 0x10: accepted, no one subscribed.
    assert set(own) <= ACCEPTED
    assert foreign == [NOT_AUTHORIZED] * 5
