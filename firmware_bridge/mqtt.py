"""The bridge's connection to the broker.

:class:`BridgeConnection` - the bridge's subscriber: MQTT 5 (falling back to 3.1.1), QoS 1, a
persistent session (clean start off, session expiry set) so the broker queues telemetry while the
bridge is away, manual acknowledgements, subscriptions made in ``on_connect``, a retained
``celltrail/v1/bridge/status`` with a last will ``{"online": false}``, exponential reconnect backoff,
TLS and credentials from the settings, optional shared subscriptions.

The plain clients for tools, tests and benchmarks live in mqtt_clients.py; what every client shares in
paho_setup.py; the bridge's fast-reading paho client in buffered_client.py. Only these four modules
import paho.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from firmware_bridge import topics
from firmware_bridge.buffered_client import BufferedClient
from firmware_bridge.paho_setup import RECONNECT_MAX_S, RECONNECT_MIN_S, prepare
from firmware_bridge.settings import BridgeSettings

log = logging.getLogger(__name__)

# CONNACK reason codes meaning "this broker does not speak MQTT 5" (5.0: 0x84; 3.1.1: return code 1).
_UNSUPPORTED_PROTOCOL: Final = frozenset({0x84, 1})


class AckToken(NamedTuple):
    """Identifies a received message for a later acknowledgement. The generation ties it to the
    connection it arrived on: after a reconnect the broker redelivers unacknowledged messages anyway,
    and a packet id from an older connection could name a different message in a fresh session."""

    generation: int
    mid: int
    qos: int


MessageHandler = Callable[[str, bytes, bool, AckToken], None]


class _BridgeStatus(msgspec.Struct):
    online: bool
    bridge_id: str
    ts: datetime


def bridge_status_payload(online: bool, bridge_id: str) -> bytes:
    return msgspec.json.encode(_BridgeStatus(online=online, bridge_id=bridge_id, ts=datetime.now(UTC)))


class BridgeConnection:
    def __init__(self, settings: BridgeSettings, handler: MessageHandler) -> None:
        self._settings = settings
        self._handler = handler
        self._endpoint = settings.mqtt_endpoint()
        self._v5 = settings.mqtt_protocol != "3.1.1"
        self._lock = threading.Lock()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._paused = False
        self._ever_connected = False
        self._stopping = False
        self._client = self._build()

    @property
    def bridge_id(self) -> str:
        return self._settings.client_id

    @property
    def protocol(self) -> str:
        return "5" if self._v5 else "3.1.1"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_subscribed(self, timeout: float) -> bool:
        """True once the broker confirmed our subscriptions on the current connection."""
        return self._subscribed.wait(timeout)

    def start(self) -> None:
        self._connect(self._client)

    def pause(self) -> None:
        """Stop handing messages over. Later ones stay unacknowledged and the broker redelivers them."""
        self._paused = True

    def ack(self, tokens: Sequence[object]) -> None:
        skipped = 0
        with self._lock:
            for token in tokens:
                assert isinstance(token, AckToken)
                if token.qos == 0:
                    continue
                if token.generation != self._generation or not self._connected.is_set():
                    skipped += 1
                    continue
                self._client.ack(token.mid, token.qos)
        if skipped:
            log.debug(
                "%d acknowledgements belong to a closed connection; the broker redelivers those", skipped
            )

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the retained offline status, disconnect cleanly and stop the network thread."""
        self._stopping = True
        self._paused = True
        client = self._client
        if self._connected.is_set():
            info = client.publish(
                topics.BRIDGE_STATUS, bridge_status_payload(False, self.bridge_id), qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                log.warning("could not publish the offline status; the broker's last will says it instead")
        client.disconnect()
        client.loop_stop()

    # -- paho plumbing -------------------------------------------------------------------------------

    def _build(self) -> paho.Client:
        settings = self._settings
        client = BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            # 3.1.1's persistent session; MQTT 5 uses clean_start and the session expiry instead.
            clean_session=None if self._v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
            on_publish_fast=self._on_publish_fast,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.will_set(
            topics.BRIDGE_STATUS, bridge_status_payload(False, settings.client_id), qos=1, retain=True
        )
        ca_file = str(settings.mqtt_ca_file) if settings.mqtt_ca_file is not None else None
        prepare(client, self._endpoint, ca_file)
        return client

    def _connect(self, client: paho.Client) -> None:
        settings = self._settings
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # untyped in paho
            properties.SessionExpiryInterval = settings.session_expiry_s
            # How many unacknowledged messages the broker may push: our in-memory window.
            properties.ReceiveMaximum = settings.inflight
            client.connect_async(
                self._endpoint.host,
                self._endpoint.port,
                keepalive=settings.keepalive_s,
                clean_start=False,
                properties=properties,
            )
        else:
            client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=settings.keepalive_s)
        client.loop_start()
        log.info(
            "connecting to mqtt%s://%s:%d as %s (MQTT %s)",
            "s" if self._endpoint.tls else "",
            self._endpoint.host,
            self._endpoint.port,
            settings.client_id,
            self.protocol,
        )

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            if reason.value in _UNSUPPORTED_PROTOCOL and self._v5 and self._settings.mqtt_protocol == "auto":
                self._fall_back(client)
            return
        with self._lock:
            self._generation += 1
            self._connected.set()
        self._ever_connected = True
        log.info("connected to the broker (session present: %s)", getattr(flags, "session_present", "?"))
        filters = topics.subscription_filters(self._settings.shared_group)
        if self._v5:
            # retainHandling=1: retained statuses only for a new subscription, not after every reconnect.
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe([(f, options) for f in filters])
        else:
            client.subscribe([(f, 1) for f in filters])

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self._generation += 1
            self._connected.clear()
            self._subscribed.clear()
        if self._stopping:
            return
        log.warning("disconnected from the broker (%s); reconnecting with backoff", reason)
        if (
            not self._ever_connected
            and self._v5
            and self._settings.mqtt_protocol == "auto"
            and (reason.value in _UNSUPPORTED_PROTOCOL or "protocol" in str(reason).lower())
        ):
            self._fall_back(client)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("broker refused subscriptions: %s", ", ".join(refused))
        else:
            # "online" is announced once the subscriptions stand, so it means "ready to receive".
            online = bridge_status_payload(True, self.bridge_id)
            client.publish(topics.BRIDGE_STATUS, online, qos=1, retain=True)
            self._subscribed.set()

    def _fall_back(self, old: paho.Client) -> None:
        log.warning("broker does not accept MQTT 5; falling back to MQTT 3.1.1")
        self._v5 = False
        old.disconnect()

        def swap() -> None:
            # loop_stop joins paho's thread, so it must run outside paho's callbacks.
            old.loop_stop()
            if self._stopping:
                return
            self._client = self._build()
            self._connect(self._client)

        threading.Thread(target=swap, name="bridge-mqtt-fallback", daemon=True).start()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._on_publish_fast(
            message.topic, bytes(message.payload), bool(message.retain), message.mid, message.qos
        )

    def _on_publish_fast(self, topic: str, payload: bytes, retained: bool, mid: int, qos: int) -> None:
        if self._paused:
            return
        token = AckToken(self._generation, mid, qos)
        try:
            self._handler(topic, payload, retained, token)
        except Exception:
            # The handler decodes defensively; if it still fails, the message stays unacknowledged and
            # comes back on the next connection rather than taking the network thread down.
            log.exception("handling a message on %r failed", topic)
