"""Bridge settings from the environment: defaults, conversions, clear errors, no leaked secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import firmware_bridge
from firmware_bridge.settings import SettingsError, load_settings


def test_defaults():
    settings = load_settings(env={})
    assert settings.mqtt_url == "mqtt://127.0.0.1:1883"
    assert settings.backend_url == "http://127.0.0.1:8000"
    assert (settings.batch_size, settings.batch_ms, settings.metrics_port) == (2000, 50, 0)
    assert settings.shared_group == ""
    assert settings.client_id.startswith("celltrail-bridge-")
    assert settings.mqtt_endpoint() == ("127.0.0.1", 1883, False, None, None)


def test_reads_every_variable():
    env = {
        "CELLTRAIL_MQTT_URL": "mqtts://broker.example:8884",
        "CELLTRAIL_MQTT_USERNAME": "bridge",
        "CELLTRAIL_MQTT_PASSWORD": "mqtt-pw",
        "CELLTRAIL_BACKEND_URL": "https://celltrail.example",
        "CELLTRAIL_BRIDGE_USERNAME": "svc-bridge",
        "CELLTRAIL_BRIDGE_PASSWORD": "api-pw",
        "CELLTRAIL_BRIDGE_CLIENT_ID": "bridge-a",
        "CELLTRAIL_BRIDGE_SHARED_GROUP": "celltrail",
        "CELLTRAIL_BRIDGE_BUFFER_DIR": "/var/lib/celltrail/buffer",
        "CELLTRAIL_BRIDGE_BUFFER_MAX_MB": "64",
        "CELLTRAIL_BRIDGE_BATCH_SIZE": "1000",
        "CELLTRAIL_BRIDGE_BATCH_MS": "100",
        "CELLTRAIL_BRIDGE_METRICS_PORT": "9108",
        "CELLTRAIL_BRIDGE_MAX_FUTURE_S": "120",
    }
    s = load_settings(env=env)
    assert s.mqtt_endpoint() == ("broker.example", 8884, True, "bridge", "mqtt-pw")
    assert (s.username, s.password, s.client_id, s.shared_group) == (
        "svc-bridge",
        "api-pw",
        "bridge-a",
        "celltrail",
    )
    assert s.buffer_dir == Path("/var/lib/celltrail/buffer")
    assert s.buffer_max_bytes == 64 * 1024 * 1024
    assert (s.batch_size, s.batch_ms, s.metrics_port, s.max_future_s) == (1000, 100, 9108, 120.0)


def test_tls_default_port_and_credentials_in_the_url():
    s = load_settings(env={"CELLTRAIL_MQTT_URL": "mqtts://u%40x:p%3Aw@broker"})
    assert s.mqtt_endpoint() == ("broker", 8883, True, "u@x", "p:w")


def test_empty_variables_count_as_unset():
    assert load_settings(env={"CELLTRAIL_BRIDGE_BATCH_SIZE": ""}).batch_size == 2000


def test_overrides_win():
    assert load_settings(env={"CELLTRAIL_BRIDGE_BATCH_SIZE": "7"}, batch_size=9).batch_size == 9


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CELLTRAIL_BRIDGE_BATCH_SIZE": "many"}, "CELLTRAIL_BRIDGE_BATCH_SIZE='many': Expected `int`"),
        ({"CELLTRAIL_BRIDGE_BATCH_MS": "0"}, "CELLTRAIL_BRIDGE_BATCH_MS='0': Expected `int` >= 1"),
        ({"CELLTRAIL_BRIDGE_METRICS_PORT": "70000"}, "CELLTRAIL_BRIDGE_METRICS_PORT"),
        (
            {"CELLTRAIL_MQTT_URL": "tcp://broker:1883"},
            "CELLTRAIL_MQTT_URL must start with mqtt:// or mqtts://",
        ),
        ({"CELLTRAIL_MQTT_URL": "mqtt://broker:port"}, "CELLTRAIL_MQTT_URL"),
        ({"CELLTRAIL_BACKEND_URL": "ftp://x"}, "CELLTRAIL_BACKEND_URL must be an http"),
        ({"CELLTRAIL_BRIDGE_USERNAME": "svc"}, "go together"),
        ({"CELLTRAIL_BRIDGE_SHARED_GROUP": "a/b"}, "CELLTRAIL_BRIDGE_SHARED_GROUP"),
        ({"CELLTRAIL_MQTT_CA_FILE": "/nonexistent/ca.pem"}, "CELLTRAIL_MQTT_CA_FILE: no such file"),
        ({"CELLTRAIL_BRIDGE_MQTT_PROTOCOL": "4"}, "CELLTRAIL_BRIDGE_MQTT_PROTOCOL"),
    ],
)
def test_errors_name_the_variable(env, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(env=env)
    assert message in str(caught.value)


def test_passwords_never_show():
    s = load_settings(
        env={
            "CELLTRAIL_MQTT_PASSWORD": "mqtt-secret",
            "CELLTRAIL_BRIDGE_USERNAME": "svc",
            "CELLTRAIL_BRIDGE_PASSWORD": "api-secret",
        }
    )
    for text in (repr(s), str(s), f"{s}"):
        assert "secret" not in text
        assert "***" in text


def test_nothing_is_read_at_import():
    # In a fresh interpreter, with a broken environment: importing must not touch it.
    env = {**os.environ, "CELLTRAIL_BRIDGE_BATCH_SIZE": "not-a-number", "CELLTRAIL_MQTT_URL": "nope"}
    modules = sorted(
        p.stem for p in Path(firmware_bridge.__file__).parent.glob("*.py") if p.stem != "__main__"
    )
    code = "import importlib\n" + "".join(
        f"importlib.import_module('firmware_bridge.{m}')\n" for m in modules
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    with pytest.raises(SettingsError):
        load_settings(env=env)


def test_the_api_key_is_read_checked_and_never_shown():
    key = "ctk_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
    s = load_settings(env={"CELLTRAIL_BRIDGE_API_KEY": key})
    assert s.api_key == key
    for text in (repr(s), str(s)):
        assert key[4:] not in text
    with pytest.raises(SettingsError, match="CELLTRAIL_BRIDGE_API_KEY") as refused:
        load_settings(env={"CELLTRAIL_BRIDGE_API_KEY": "a-password-by-mistake"})
    assert "a-password-by-mistake" not in str(refused.value)
