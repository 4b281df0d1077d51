"""Plain MQTT clients for the fleet simulator, tools, tests and benchmarks:

* :class:`Publisher` - QoS 1 with its own bounded window of unconfirmed messages (backpressure).
* :class:`Subscriber` - auto-acknowledging QoS 1.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from firmware_bridge.paho_setup import RECONNECT_MAX_S, RECONNECT_MIN_S, plain_client
from firmware_bridge.settings import MqttEndpoint

log = logging.getLogger(__name__)


class Publisher:
    """QoS 1 publisher with its own bounded window of unconfirmed messages (backpressure for callers)."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_id: str,
        *,
        ca_file: str | None = None,
        max_outstanding: int = 10_000,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._max_outstanding = max_outstanding
        self._cond = threading.Condition()
        self._published = 0
        self._confirmed = 0
        self._connected = threading.Event()
        client = plain_client(endpoint, client_id, ca_file)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.max_inflight_messages_set(min(max_outstanding, 65_535))
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        self._client = client

    def start(self, timeout: float = 10.0) -> bool:
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()
        return self._connected.wait(timeout)

    @property
    def outstanding(self) -> int:
        return self._published - self._confirmed

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> None:
        """Queue a message; blocks while ``max_outstanding`` messages await the broker's PUBACK."""
        with self._cond:
            while self._published - self._confirmed >= self._max_outstanding:
                self._cond.wait(1.0)
            self._published += 1
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        # NO_CONN still queues the message: paho sends it after the reconnect.
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            log.warning("publish to %s failed: %s", topic, paho.error_string(info.rc))
            with self._cond:
                self._published -= 1

    def flush(self, timeout: float) -> bool:
        """Wait until the broker confirmed everything published so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._published > self._confirmed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason.is_failure:
            self._connected.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Properties
    ) -> None:
        with self._cond:
            self._confirmed += 1
            self._cond.notify_all()


class Subscriber:
    """Auto-acknowledging QoS 1 subscriber; ``on_message(topic, payload, retained)``."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_id: str,
        filters: Sequence[str],
        on_message: Callable[[str, bytes, bool], None],
    ) -> None:
        self._endpoint = endpoint
        self._filters = list(filters)
        self._callback = on_message
        self._subscribed = threading.Event()
        client = plain_client(endpoint, client_id, None)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    def start(self, timeout: float = 10.0) -> bool:
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason.is_failure:
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in self._filters])

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._subscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._callback(message.topic, bytes(message.payload), bool(message.retain))
