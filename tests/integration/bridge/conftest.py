"""Fixtures for the bridge's integration tests: a private Mosquitto and an in-memory ingest backend.

The broker fixture is session-wide; the tests use it only through ``broker_url``, so switching to a
shared ``mqtt_broker`` fixture means redefining that one fixture.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bridge_it_support import (
    MOSQUITTO,
    FakeBackend,
    PrivateBroker,
    bridge_settings,
    free_port,
    private_mosquitto,
)

from firmware_bridge.bridge import Bridge
from firmware_bridge.mqtt_clients import Publisher
from firmware_bridge.settings import load_settings


@pytest.fixture(scope="session")
def bridge_mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    if not Path(MOSQUITTO).exists() and shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    with private_mosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture
def broker_url(bridge_mqtt_broker: PrivateBroker) -> str:
    return bridge_mqtt_broker.url


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    fake = FakeBackend(port=free_port())
    fake.go_up()
    yield fake
    fake.go_down()


@pytest.fixture
def start_bridge(broker_url: str, backend: FakeBackend, tmp_path: Path) -> Iterator[Callable[..., Bridge]]:
    started: list[Bridge] = []

    def start(**overrides: object) -> Bridge:
        overrides.setdefault("buffer_dir", str(tmp_path / f"buffer-{len(started)}"))
        settings = bridge_settings(broker_url, backend.url, **overrides)
        bridge = Bridge(settings)
        bridge.start()
        assert bridge.connection.wait_subscribed(10.0), "bridge did not subscribe"
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.stop()


@pytest.fixture
def publisher(broker_url: str) -> Iterator[Publisher]:
    endpoint = load_settings(env={}, mqtt_url=broker_url).mqtt_endpoint()
    pub = Publisher(endpoint, f"it-pub-{uuid.uuid4().hex[:8]}")
    assert pub.start(10.0), "test publisher could not connect"
    yield pub
    pub.stop()
