"""Private servers for tests: a PostgreSQL cluster and an MQTT broker on free ports, in temp dirs.

Tests that stop or break a server start their own with these; everything else shares the session ones.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from backend.embedded.mqtt import EmbeddedBroker
from backend.embedded.postgres import EmbeddedPostgres


def start_postgres(directory: Path) -> EmbeddedPostgres:
    cluster = EmbeddedPostgres(directory / "pgdata", fast_unsafe=True)
    cluster.start()
    return cluster


class Broker(EmbeddedBroker):
    """The same private broker `celltrail up` runs (Mosquitto when installed, else amqtt), but open to
    anonymous clients: the shared test broker is where tests play any logger they like. The secured
    broker `celltrail up` runs (passwords, the per-logger ACL) is tested in
    tests/security/test_security_embedded_broker.py."""

    def __init__(self, directory: Path, port: int | None = None, *, anonymous: bool = True) -> None:
        super().__init__(directory, port, anonymous=anonymous)


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883
