"""The production Mosquitto configuration, run for real: no anonymous access and each logger confined to
its own topic."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from backend.embedded.ports import free_port, port_open

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {"bridge": "bridge-secret-1", "LGR-0001": "logger-one-secret", "LGR-0002": "logger-two-secret"}

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_passwd") is None, reason="needs the mosquitto package"
)


@pytest.fixture
def secured_broker(tmp_path):
    passwd = tmp_path / "passwd"
    for user, password in PASSWORDS.items():
        flags = ["-c"] if not passwd.exists() else []
        subprocess.run(
            ["mosquitto_passwd", *flags, "-b", str(passwd), user, password], check=True, capture_output=True
        )
    port = free_port()
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = conf.replace("/mosquitto/config/passwd.d/passwd", str(passwd))
    conf = conf.replace("/mosquitto/config/acl", str(ROOT / "deploy" / "mosquitto" / "acl"))
    conf = conf.replace("/mosquitto/data/", f"{tmp_path}/")
    if os.geteuid() == 0:
        conf += "user root\n"  # else Mosquitto drops to `mosquitto`, who cannot read pytest's 0700 folders
    (tmp_path / "mosquitto.conf").write_text(conf)
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen(
        [binary, "-c", str(tmp_path / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        assert process.poll() is None, "mosquitto exited at start"
        assert time.monotonic() < deadline, "mosquitto did not open its port"
        time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


def _client(port: int, user: str | None) -> tuple[mqtt.Client, int]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.monotonic_ns()}")
    if user is not None:
        client.username_pw_set(user, PASSWORDS[user])
    result: list[int] = []
    connected = threading.Event()

    def on_connect(_c, _u, _f, reason_code, _p):
        result.append(reason_code.value)
        connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    connected.wait(5)
    return client, result[0] if result else -1


def test_anonymous_clients_are_refused(secured_broker):
    client, code = _client(secured_broker, None)
    client.loop_stop()
    assert code != 0


def test_a_logger_can_publish_only_under_its_own_topic(secured_broker):
    received: list[str] = []
    bridge, code = _client(secured_broker, "bridge")
    assert code == 0
    subscribed = threading.Event()
    bridge.on_message = lambda _c, _u, message: received.append(message.topic)
    bridge.on_subscribe = lambda *_args: subscribed.set()
    bridge.subscribe("celltrail/v1/loggers/+/telemetry", qos=1)
    assert subscribed.wait(5)

    logger, code = _client(secured_broker, "LGR-0001")
    assert code == 0
    logger.publish("celltrail/v1/loggers/LGR-0002/telemetry", b"{}", qos=1).wait_for_publish(5)
    logger.publish("celltrail/v1/loggers/LGR-0001/telemetry", b"{}", qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 5
    while "celltrail/v1/loggers/LGR-0001/telemetry" not in received and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # give a wrongly forwarded message the same chance to arrive
    for client in (logger, bridge):
        client.loop_stop()
        client.disconnect()
    assert received == ["celltrail/v1/loggers/LGR-0001/telemetry"]
