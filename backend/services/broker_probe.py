"""Is the MQTT broker there? A real MQTT 3.1.1 CONNECT/CONNACK handshake, not just an open port:
a broker that accepts TCP but refuses our credentials is not healthy."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from urllib.parse import urlsplit

_CONNACK_CODES = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


def _utf8(value: str) -> bytes:
    data = value.encode()
    return struct.pack("!H", len(data)) + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id: str, username: str | None, password: str | None) -> bytes:
    flags = 0x02  # clean session: the probe must leave nothing behind on the broker
    payload = _utf8(client_id)
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
        if password is not None:
            flags |= 0x40
            payload += _utf8(password)
    variable = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 10)
    body = variable + payload
    return bytes([0x10]) + _remaining_length(len(body)) + body


async def probe(
    url: str, username: str | None = None, password: str | None = None, timeout: float = 3.0
) -> tuple[bool, str]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    secure = parts.scheme == "mqtts"
    port = parts.port or (8883 if secure else 1883)
    user = username if username is not None else parts.username
    secret = password if password is not None else parts.password
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl.create_default_context() if secure else None), timeout
        )
    except (OSError, TimeoutError) as exc:
        return False, f"cannot reach {host}:{port} ({type(exc).__name__})"
    try:
        writer.write(connect_packet("celltrail-health", user, secret))
        await writer.drain()
        ack = await asyncio.wait_for(reader.readexactly(4), timeout)
        if ack[0] != 0x20:
            return False, "the broker did not answer with CONNACK"
        if ack[3] != 0:
            return False, f"the broker refused the connection: {_CONNACK_CODES.get(ack[3], ack[3])}"
        writer.write(b"\xe0\x00")  # DISCONNECT
        await writer.drain()
        return True, f"connected to {host}:{port}"
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        return False, f"no MQTT answer from {host}:{port} ({type(exc).__name__})"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class BrokerMonitor:
    """Probes in the background so /healthz answers at once instead of waiting on the broker."""

    def __init__(self, url: str | None, username: str | None, password: str | None, every: float) -> None:
        self.url = url
        self.username = username
        self.password = password
        self.every = every
        self.ok = False
        self.detail = "not checked yet" if url else "no broker configured (CELLTRAIL_MQTT_URL unset)"
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> None:
        if self.url is None:
            return
        self.ok, self.detail = await probe(self.url, self.username, self.password)

    async def _loop(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.every)

    def start(self) -> None:
        if self.url is not None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
