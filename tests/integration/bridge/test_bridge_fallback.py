"""MQTT 5 first, 3.1.1 when the broker refuses 5: through a proxy that plays an MQTT 3.1.1-only broker."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from bridge_it_support import free_port, json_telemetry, wait_for

from firmware_bridge import topics


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _serve(client: socket.socket, upstream_port: int, levels: list[int]) -> None:
    # Enough of the CONNECT to read its protocol level: fixed header, length (1-4 bytes),
    # "\x00\x04MQTT", level. Every CONNECT is longer than these 12 bytes.
    head = b""
    while len(head) < 12:
        chunk = client.recv(12 - len(head))
        if not chunk:
            client.close()
            return
        head += chunk
    length_bytes = 1
    while head[length_bytes] & 0x80:
        length_bytes += 1
    level = head[1 + length_bytes + 6]
    levels.append(level)
    if level == 5:
        client.sendall(b"\x20\x02\x00\x01")  # CONNACK "unacceptable protocol version", 3.1.1 style
        client.close()
        return
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    upstream.sendall(head)
    threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
    _pipe(client, upstream)


@pytest.fixture
def mqtt311_only_proxy(bridge_mqtt_broker) -> Iterator[tuple[str, list[int]]]:
    levels: list[int] = []
    server = socket.create_server(("127.0.0.1", free_port()))
    port = server.getsockname()[1]

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = server.accept()
                threading.Thread(
                    target=_serve, args=(client, bridge_mqtt_broker.port, levels), daemon=True
                ).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"mqtt://127.0.0.1:{port}", levels
    server.close()


def test_falls_back_to_311_when_the_broker_refuses_mqtt5(
    mqtt311_only_proxy, start_bridge, publisher, backend
):
    url, levels = mqtt311_only_proxy
    bridge = start_bridge(mqtt_url=url)
    assert levels[:1] == [5]  # tried MQTT 5 first
    assert levels[-1] == 4  # and connected with 3.1.1
    assert bridge.connection.protocol == "3.1.1"
    ts = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
    publisher.publish(topics.telemetry_topic("LGR-FALL"), json_telemetry("LGR-FALL", [(ts, 4.4)]))
    wait_for(lambda: backend.reading_count() == 1, what="reading through the 3.1.1 connection")
