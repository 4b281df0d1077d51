"""TLS and broker credentials from the settings, against a Mosquitto that demands both."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bridge_it_support import json_telemetry, private_mosquitto, wait_for

from firmware_bridge import topics
from firmware_bridge.bridge import Bridge
from firmware_bridge.mqtt_clients import Publisher
from firmware_bridge.settings import load_settings

MQTT_USER, MQTT_PASSWORD = "bridge-user", "broker-secret"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(folder: Path) -> None:
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        cwd=folder,
    )
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=folder,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if shutil.which("openssl") is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("openssl and mosquitto_passwd are needed for the TLS test")
    folder = tmp_path_factory.mktemp("tls-broker")
    _certificates(folder)
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(folder / "passwd"), MQTT_USER, MQTT_PASSWORD], check=True
    )
    (folder / "passwd").chmod(0o600)
    options = "\n".join(
        [
            f"certfile {folder / 'server.crt'}",
            f"keyfile {folder / 'server.key'}",
            f"password_file {folder / 'passwd'}",
        ]
    )
    with private_mosquitto(folder, options) as broker:
        yield f"mqtts://127.0.0.1:{broker.port}", folder / "ca.crt"


def test_bridge_over_tls_with_credentials(tls_broker, backend, tmp_path):
    url, ca_file = tls_broker
    env = {
        "CELLTRAIL_MQTT_URL": url,
        "CELLTRAIL_MQTT_USERNAME": MQTT_USER,
        "CELLTRAIL_MQTT_PASSWORD": MQTT_PASSWORD,
        "CELLTRAIL_MQTT_CA_FILE": str(ca_file),
        "CELLTRAIL_BACKEND_URL": backend.url,
        "CELLTRAIL_BRIDGE_USERNAME": "bridge",
        "CELLTRAIL_BRIDGE_PASSWORD": "bridge-secret",
        "CELLTRAIL_BRIDGE_CLIENT_ID": f"it-tls-{uuid.uuid4().hex[:6]}",
        "CELLTRAIL_BRIDGE_BUFFER_DIR": str(tmp_path / "buffer"),
    }
    settings = load_settings(env=env)
    bridge = Bridge(settings)
    bridge.start()
    publisher = Publisher(settings.mqtt_endpoint(), "it-tls-pub", ca_file=str(ca_file))
    try:
        assert bridge.connection.wait_subscribed(10.0)
        assert publisher.start(10.0)
        ts = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0)
        publisher.publish(topics.telemetry_topic("LGR-TLS1"), json_telemetry("LGR-TLS1", [(ts, 3.3)]))
        wait_for(lambda: backend.reading_count() == 1, what="reading over TLS")
        assert backend.readings == {("LGR-TLS1", ts): 3.3}
    finally:
        publisher.stop()
        bridge.stop()


def test_wrong_broker_password_is_refused_not_crashed(tls_broker, backend, tmp_path, caplog):
    url, ca_file = tls_broker
    settings = load_settings(
        env={},
        mqtt_url=url,
        mqtt_username=MQTT_USER,
        mqtt_password="wrong",
        mqtt_ca_file=str(ca_file),
        backend_url=backend.url,
        client_id=f"it-tls-bad-{uuid.uuid4().hex[:6]}",
        buffer_dir=str(tmp_path / "buffer"),
    )
    bridge = Bridge(settings)
    bridge.start()
    try:
        wait_for(lambda: "broker refused the connection" in caplog.text, what="refusal logged")
        assert not bridge.connection.connected
        assert "wrong" not in caplog.text
    finally:
        bridge.stop()
