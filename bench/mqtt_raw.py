"""A bare MQTT 3.1.1 QoS 1 publisher and subscriber on plain sockets, for the benchmarks' load and ceilings.

Why not paho: paho's Python packet loop costs 100-200 µs per message, so a paho publisher on this machine
offers about 5,000 msg/s and a benchmark of a 6,000 msg/s target would measure the publisher. Here a
publisher writes many pre-framed PUBLISH packets per ``sendall`` and a reader thread counts PUBACKs; the
subscriber parses frames straight from a large receive buffer and answers PUBACKs in bulk. Both speak only
what the benchmarks need (no TLS, no reconnects, no MQTT 5 properties): thousands of real loggers are
thousands of devices, and this is the cheapest stand-in for them on one machine.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable

_PUBACK_PREFIX = b"\x40\x02"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _connect(host: str, port: int, client_id: str, clean: bool = True) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = _string("MQTT") + bytes([4, 0x02 if clean else 0x00]) + struct.pack("!H", 60) + _string(client_id)
    sock.sendall(b"\x10" + _varint(len(body)) + body)
    connack = _read_exact(sock, 4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise RuntimeError(f"broker refused the connection: {connack!r}")
    sock.settimeout(None)
    return sock


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def _frames(buffer: bytearray) -> tuple[list[tuple[int, int, int]], int]:
    """Complete frames at the start of ``buffer`` as (first byte, body start, body end) and how many bytes
    they take."""
    frames: list[tuple[int, int, int]] = []
    pos, end = 0, len(buffer)
    while pos + 2 <= end:
        length, shift, i = 0, 0, pos + 1
        while True:
            if i >= end:
                return frames, pos
            byte = buffer[i]
            length |= (byte & 0x7F) << shift
            shift += 7
            i += 1
            if not byte & 0x80:
                break
        if i + length > end:
            break
        frames.append((buffer[pos], i, i + length))
        pos = i + length
    return frames, pos


class RawPublisher:
    """QoS 1 publisher with a window of unconfirmed messages; ``publish_many`` frames and writes a list."""

    def __init__(self, host: str, port: int, client_id: str, window: int = 5000) -> None:
        self._sock = _connect(host, port, client_id)
        self._window = window
        self._next_id = 0
        self.published = 0
        self.confirmed = 0
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="raw-puback-reader", daemon=True)
        self._reader.start()

    def publish_many(self, messages: list[tuple[bytes, bytes]]) -> None:
        """Publish (encoded topic, payload) pairs; blocks while the window is full."""
        with self._cond:
            while self.published - self.confirmed + len(messages) > self._window:
                self._cond.wait(1.0)
            self.published += len(messages)
        out = bytearray()
        for topic, payload in messages:
            self._next_id = self._next_id % 65535 + 1
            remaining = 2 + len(topic) + 2 + len(payload)
            out += b"\x32" + _varint(remaining) + struct.pack("!H", len(topic)) + topic
            out += struct.pack("!H", self._next_id) + payload
        self._sock.sendall(out)

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.confirmed < self.published:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.sendall(b"\xe0\x00")
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    def _read(self) -> None:
        buffer = bytearray()
        while not self._closed:
            try:
                chunk = self._sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            frames, used = _frames(buffer)
            del buffer[:used]
            acks = sum(1 for first, _, _ in frames if first >> 4 == 4)
            if acks:
                with self._cond:
                    self.confirmed += acks
                    self._cond.notify_all()


class RawSubscriber:
    """QoS 1 subscriber calling ``on_messages(count, payload bytes)`` for each chunk of frames it parsed."""

    def __init__(
        self, host: str, port: int, client_id: str, topic_filter: str, on_messages: Callable[[int, int], None]
    ) -> None:
        self._sock = _connect(host, port, client_id)
        body = struct.pack("!H", 1) + _string(topic_filter) + b"\x01"
        self._sock.sendall(b"\x82" + _varint(len(body)) + body)
        self._on_messages = on_messages
        self._subscribed = threading.Event()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="raw-subscriber", daemon=True)
        self._reader.start()
        if not self._subscribed.wait(10):
            raise RuntimeError("no SUBACK from the broker")

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.sendall(b"\xe0\x00")
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    def _read(self) -> None:
        buffer = bytearray()
        while not self._closed:
            try:
                chunk = self._sock.recv(1 << 18)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            frames, used = _frames(buffer)
            acks = bytearray()
            count = size = 0
            for first, start, end in frames:
                kind = first >> 4
                if kind == 3:
                    payload_at = start + 2 + ((buffer[start] << 8) | buffer[start + 1])
                    if (first >> 1) & 3:
                        acks += _PUBACK_PREFIX + buffer[payload_at : payload_at + 2]
                        payload_at += 2
                    count += 1
                    size += end - payload_at
                elif kind == 9:
                    self._subscribed.set()
            del buffer[:used]
            if acks:
                self._sock.sendall(acks)
            if count:
                self._on_messages(count, size)
