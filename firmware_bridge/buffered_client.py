"""A paho client that reads many packets per system call (the bridge's network thread)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

# (topic, payload, retained, packet id, qos)
FastHandler = Callable[[str, bytes, bool, int, int], None]


class BufferedClient(paho.Client):
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
