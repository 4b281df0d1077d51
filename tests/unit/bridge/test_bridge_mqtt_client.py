"""The bridge's paho subclass: buffered reads and the short path for PUBLISH packets, driven over a socket
pair with hand-made MQTT 5 frames (no broker), so the paho internals it relies on are pinned by tests."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from firmware_bridge.buffered_client import BufferedClient

Seen = list[tuple[str, bytes, bool, int, int]]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_frame(topic: str, payload: bytes, mid: int, *, retain: bool = False, props: bytes = b"") -> bytes:
    raw = topic.encode()
    body = struct.pack("!H", len(raw)) + raw + struct.pack("!H", mid) + _varint(len(props)) + props + payload
    return bytes([0x32 | (0x01 if retain else 0)]) + _varint(len(body)) + body


@pytest.fixture
def wired() -> Iterator[tuple[BufferedClient, socket.socket, Seen, list[Any]]]:
    seen: Seen = []
    slow: list[Any] = []
    client = BufferedClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="unit",
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=True,
        on_publish_fast=lambda *args: seen.append(args),
    )
    client.on_message = lambda _client, _userdata, message: slow.append(message)
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours  # what paho's connect would have set
    try:
        yield client, broker, seen, slow
    finally:
        broker.close()
        ours.close()


def test_many_packets_in_one_read_are_all_handled(wired: Any) -> None:
    client, broker, seen, _ = wired
    frames = [
        publish_frame(f"celltrail/v1/loggers/LGR-000{i}/telemetry", b'{"n":%d}' % i, i) for i in range(5)
    ]
    broker.sendall(b"".join(frames))
    assert client.loop_read() is MQTTErrorCode.MQTT_ERR_SUCCESS
    assert [(t, p, mid) for t, p, _, mid, _ in seen] == [
        (f"celltrail/v1/loggers/LGR-000{i}/telemetry", b'{"n":%d}' % i, i) for i in range(5)
    ]
    assert client._rbuf == b""


def test_a_packet_split_across_reads_is_completed_by_the_next_read(wired: Any) -> None:
    client, broker, seen, _ = wired
    frame = publish_frame("celltrail/v1/loggers/LGR-0001/telemetry", b"x" * 300, 7, retain=True)
    broker.sendall(frame[:50])
    client.loop_read()
    assert seen == []
    broker.sendall(frame[50:])
    client.loop_read()
    assert seen == [("celltrail/v1/loggers/LGR-0001/telemetry", b"x" * 300, True, 7, 1)]


def test_a_publish_with_properties_goes_through_paho(wired: Any) -> None:
    client, broker, seen, slow = wired
    content_type = b"\x03" + struct.pack("!H", 16) + b"application/json"
    broker.sendall(publish_frame("celltrail/v1/loggers/LGR-0001/telemetry", b"{}", 3, props=content_type))
    client.loop_read()
    assert seen == []
    assert [(m.topic, m.payload, m.mid) for m in slow] == [
        ("celltrail/v1/loggers/LGR-0001/telemetry", b"{}", 3)
    ]


def test_closing_the_socket_drops_what_was_buffered(wired: Any) -> None:
    client, _, _, _ = wired
    client._rbuf += b"stale bytes of an old connection"
    client._sock_close()
    assert client._rbuf == b""
