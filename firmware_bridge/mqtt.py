"""Everything that talks to paho-mqtt; no other module imports paho.

* :class:`BridgeConnection` - the bridge's subscriber: MQTT 5 (falling back to 3.1.1), QoS 1, a
  persistent session (clean start off, session expiry set) so the broker queues telemetry while the
  bridge is away, manual acknowledgements, subscriptions made in ``on_connect``, a retained
  ``celltrail/v1/bridge/status`` with a last will ``{"online": false}``, exponential reconnect backoff,
  TLS and credentials from the settings, optional shared subscriptions.
* :class:`Publisher` - a plain QoS 1 publisher for the fleet simulator, tests and benchmarks.
* :class:`Subscriber` - a plain auto-acknowledging subscriber for tests and benchmarks.

Every socket gets TCP_NODELAY: without it QoS 1 traffic waits on the 40 ms delayed-ACK timer and a
broker link that carries thousands of messages a second drops to about a hundred.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from firmware_bridge import topics
from firmware_bridge.settings import BridgeSettings, MqttEndpoint

log = logging.getLogger(__name__)

RECONNECT_MIN_S: Final = 1
RECONNECT_MAX_S: Final = 60
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
# (topic, payload, retained, packet id, qos)
FastHandler = Callable[[str, bytes, bool, int, int], None]


class _BridgeStatus(msgspec.Struct):
    online: bool
    bridge_id: str
    ts: datetime


def bridge_status_payload(online: bool, bridge_id: str) -> bytes:
    return msgspec.json.encode(_BridgeStatus(online=online, bridge_id=bridge_id, ts=datetime.now(UTC)))


class _QuietShutdown(logging.Filter):
    """paho's network thread logs "Client is not connected" as an error when it takes one more turn
    after our own disconnect(); a lost connection is reported by on_disconnect anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


def _paho_logger() -> logging.Logger:
    logger = logging.getLogger("firmware_bridge.paho")
    if not any(isinstance(f, _QuietShutdown) for f in logger.filters):
        logger.addFilter(_QuietShutdown())
    return logger


def _nodelay(client: paho.Client, userdata: Any, sock: Any) -> None:
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _configure_security(client: paho.Client, endpoint: MqttEndpoint, ca_file: str | None) -> None:
    if endpoint.tls:
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)


class _BufferedClient(paho.Client):
    """paho reads every packet with several small ``recv`` calls (the command byte, each length byte, the
    body) and handles one packet per ``select``: about five system calls per message, which at thousands
    of messages a second was the largest single cost of the bridge's network thread (py-spy). This client
    reads up to 64 KiB at once and serves paho's small reads from that buffer, and ``loop_read`` goes on
    handling packets while the buffer holds bytes, so one ``select`` and one ``recv`` carry many messages.

    Incoming PUBLISH packets without MQTT 5 properties (what a broker forwards from loggers) take a
    short path to ``on_publish_fast(topic, payload, retained, mid, qos)``: paho's own builds a
    Properties object (some 40 attribute operations) and an MQTTMessage per message, another sixth of the
    thread's time. Anything else (properties present, QoS 2, a malformed packet) goes through paho.

    It overrides paho's private ``_sock_recv``, ``_sock_close`` and ``_handle_publish``; paho is pinned
    exactly in constraints.txt and tests/unit/bridge/test_bridge_mqtt_client.py checks the behaviour we
    rely on. The buffer belongs to one socket: closing it (also before every reconnect) drops what is
    left, as the broker redelivers unacknowledged messages on the next connection anyway."""

    READ_SIZE: Final = 65536

    def __init__(self, *args: Any, on_publish_fast: FastHandler | None = None, **kwargs: Any) -> None:
        self._rbuf = bytearray()
        self._on_publish_fast = on_publish_fast
        super().__init__(*args, **kwargs)

    def _handle_publish(self) -> MQTTErrorCode:
        handler = self._on_publish_fast
        command: int = self._in_packet["command"]
        packet: bytes | bytearray = self._in_packet["packet"]
        qos = (command & 0x06) >> 1
        if handler is None or qos == 2:
            return super()._handle_publish()
        try:
            pos = 2 + ((packet[0] << 8) | packet[1])
            topic = packet[2:pos].decode()
            mid = 0
            if qos:
                mid = (packet[pos] << 8) | packet[pos + 1]
                pos += 2
            if self._protocol == MQTTProtocolVersion.MQTTv5:
                if packet[pos] != 0:
                    return super()._handle_publish()  # properties to decode (e.g. a topic alias)
                pos += 1
        except (IndexError, UnicodeDecodeError):
            return super()._handle_publish()  # paho reports the malformed packet its own way
        if not topic:
            return super()._handle_publish()
        with self._in_callback_mutex:
            try:
                handler(topic, bytes(packet[pos:]), bool(command & 0x01), mid, qos)
            except Exception as err:
                self._easy_log(paho.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._rbuf:
            data = super()._sock_recv(max(bufsize, self.READ_SIZE))
            if len(data) <= bufsize:
                return data  # includes b"" (the broker closed the connection)
            self._rbuf += data
        chunk = bytes(self._rbuf[:bufsize])
        del self._rbuf[:bufsize]
        return chunk

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        # Without this, packets already in our buffer would wait for the next select(), which does not
        # see them (the socket has nothing new to read) and could sleep until the keepalive.
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._rbuf and self._sock is not None:
            rc = super().loop_read(max_packets)
        return rc

    def _sock_close(self) -> None:
        self._rbuf.clear()
        super()._sock_close()


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
        client = _BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            # 3.1.1's persistent session; MQTT 5 uses clean_start and the session expiry instead.
            clean_session=None if self._v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
            on_publish_fast=self._on_publish_fast,
        )
        client.enable_logger(_paho_logger())
        client.on_socket_open = _nodelay
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.will_set(
            topics.BRIDGE_STATUS, bridge_status_payload(False, settings.client_id), qos=1, retain=True
        )
        ca_file = str(settings.mqtt_ca_file) if settings.mqtt_ca_file is not None else None
        _configure_security(client, self._endpoint, ca_file)
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
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.enable_logger(_paho_logger())
        client.on_socket_open = _nodelay
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.max_inflight_messages_set(min(max_outstanding, 65_535))
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        _configure_security(client, endpoint, ca_file)
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
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.enable_logger(_paho_logger())
        client.on_socket_open = _nodelay
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        _configure_security(client, endpoint, None)
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
