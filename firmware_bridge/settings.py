"""Bridge settings: one frozen Struct built from CELLTRAIL_* environment variables when asked, never at
import time. A wrong value fails at start-up with the variable's name and what it expects.

| variable | default |
|---|---|
| CELLTRAIL_MQTT_URL | mqtt://127.0.0.1:1883 (mqtts:// for TLS, default port 8883) |
| CELLTRAIL_MQTT_USERNAME / CELLTRAIL_MQTT_PASSWORD | none |
| CELLTRAIL_MQTT_CA_FILE | none (system trust store for mqtts://) |
| CELLTRAIL_BACKEND_URL | http://127.0.0.1:8000 |
| CELLTRAIL_BRIDGE_API_KEY | none; the service account's API key (`ctk_...`, sent as a bearer token) |
| CELLTRAIL_BRIDGE_USERNAME / CELLTRAIL_BRIDGE_PASSWORD | none; the older way, ignored with an API key |
| CELLTRAIL_BRIDGE_CLIENT_ID | celltrail-bridge-<hostname>; must be stable for the persistent session |
| CELLTRAIL_BRIDGE_SHARED_GROUP | empty = plain subscriptions; a name = MQTT 5 shared subscriptions |
| CELLTRAIL_BRIDGE_BUFFER_DIR | .celltrail/bridge-buffer |
| CELLTRAIL_BRIDGE_BUFFER_MAX_MB | 512 |
| CELLTRAIL_BRIDGE_BATCH_SIZE | 2000 readings |
| CELLTRAIL_BRIDGE_BATCH_MS | 50 |
| CELLTRAIL_BRIDGE_METRICS_PORT | 0 = no metrics server |
| CELLTRAIL_BRIDGE_METRICS_HOST | 127.0.0.1 |
| CELLTRAIL_BRIDGE_MAX_FUTURE_S | 600: readings further ahead of receipt are dead letters |
| CELLTRAIL_BRIDGE_INFLIGHT | 10000: most messages received but not yet committed (MQTT 5 receive maximum) |
| CELLTRAIL_BRIDGE_SESSION_EXPIRY_S | 604800: how long the broker keeps our queue while we are away |
| CELLTRAIL_BRIDGE_MQTT_PROTOCOL | auto (MQTT 5, falling back to 3.1.1), 5 or 3.1.1 |
| CELLTRAIL_BRIDGE_KEEPALIVE_S | 30 |
| CELLTRAIL_BRIDGE_HTTP_TIMEOUT_S | 10 |
| CELLTRAIL_BRIDGE_RETRY_MAX_S | 30: the longest pause between two tries to reach the backend |
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final, Literal, NamedTuple
from urllib.parse import unquote, urlsplit

import msgspec

MqttProtocol = Literal["auto", "5", "3.1.1"]


class SettingsError(ValueError):
    """A setting is malformed; the message names the variable and what it expects."""


class MqttEndpoint(NamedTuple):
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


class BridgeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_ca_file: Path | None = None
    backend_url: str = "http://127.0.0.1:8000"
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")] = (
        "celltrail-bridge"
    )
    shared_group: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9._-]*$")] = ""
    buffer_dir: Path = Path(".celltrail/bridge-buffer")
    buffer_max_mb: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] = 512.0
    # One batch is one transaction (and one fsync) in the backend: under load, larger batches store more
    # readings a second end to end (bench/ingest_e2e.py; figures in docs/benchmarks.md). Under light load
    # batches close by age (batch_ms) long before they are full.
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 2000
    batch_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 50
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    metrics_host: str = "127.0.0.1"
    max_future_s: Annotated[float, msgspec.Meta(ge=0, le=30 * 86_400)] = 600.0
    # Several full batches' worth of single-reading messages, so the network thread keeps reading while
    # a batch is being stored, with the memory of decoded readings bounded.
    inflight: Annotated[int, msgspec.Meta(ge=1, le=65_535)] = 10_000
    session_expiry_s: Annotated[int, msgspec.Meta(ge=60, le=0xFFFFFFFF)] = 7 * 86_400
    mqtt_protocol: MqttProtocol = "auto"
    keepalive_s: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 30
    http_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    retry_max_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0

    def __post_init__(self) -> None:
        scheme = urlsplit(self.mqtt_url).scheme
        if scheme not in ("mqtt", "mqtts"):
            raise SettingsError(f"CELLTRAIL_MQTT_URL must start with mqtt:// or mqtts:// (got {scheme!r}://)")
        try:
            self.mqtt_endpoint()
        except ValueError as exc:
            raise SettingsError(f"CELLTRAIL_MQTT_URL: {exc}") from None
        backend = urlsplit(self.backend_url)
        if backend.scheme not in ("http", "https") or not backend.hostname:
            raise SettingsError("CELLTRAIL_BACKEND_URL must be an http:// or https:// URL with a host")
        if self.mqtt_ca_file is not None and not self.mqtt_ca_file.is_file():
            raise SettingsError(f"CELLTRAIL_MQTT_CA_FILE: no such file {str(self.mqtt_ca_file)!r}")
        if (self.username is None) != (self.password is None):
            raise SettingsError("CELLTRAIL_BRIDGE_USERNAME and CELLTRAIL_BRIDGE_PASSWORD go together")
        if self.api_key is not None and not self.api_key.startswith("ctk_"):
            raise SettingsError(
                "CELLTRAIL_BRIDGE_API_KEY must be an API key (ctk_...) from `celltrail apikey create`"
            )

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks; passwords must not.
        shown = []
        for name in msgspec.structs.fields(self):
            value = getattr(self, name.name)
            if name.name in _SECRETS and value is not None:
                value = "***"
            shown.append(f"{name.name}={value!r}")
        return f"BridgeSettings({', '.join(shown)})"

    def mqtt_endpoint(self) -> MqttEndpoint:
        """Host, port, TLS and credentials; explicit username/password settings win over the URL's."""
        url = urlsplit(self.mqtt_url)
        if not url.hostname:
            raise ValueError("no host in the URL")
        if url.path not in ("", "/"):
            raise ValueError("the URL must not have a path")
        tls = url.scheme == "mqtts"
        port = url.port if url.port is not None else (8883 if tls else 1883)
        username = self.mqtt_username if self.mqtt_username is not None else _unquoted(url.username)
        password = self.mqtt_password if self.mqtt_password is not None else _unquoted(url.password)
        return MqttEndpoint(url.hostname, port, tls, username, password)

    @property
    def buffer_max_bytes(self) -> int:
        return int(self.buffer_max_mb * 1024 * 1024)


def _unquoted(value: str | None) -> str | None:
    return unquote(value) if value is not None else None


_SECRETS: Final = frozenset({"mqtt_password", "password", "api_key"})

# Field -> variable. MQTT and backend addresses are shared with the rest of Celltrail; the rest is ours.
_SHARED: Final = frozenset({"mqtt_url", "mqtt_username", "mqtt_password", "mqtt_ca_file", "backend_url"})
ENV_NAMES: Final = {
    f.name: f"CELLTRAIL_{f.name.upper()}" if f.name in _SHARED else f"CELLTRAIL_BRIDGE_{f.name.upper()}"
    for f in msgspec.structs.fields(BridgeSettings)
}


def default_client_id() -> str:
    # A persistent session is keyed by client id, so it must survive restarts: derive it from the host.
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname()) or "localhost"
    return f"celltrail-bridge-{host}"[:128]


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> BridgeSettings:
    """Build settings from the environment (or ``env``); empty variables count as unset. ``overrides``
    (field names, e.g. from command-line flags) win over the environment when not None."""
    source = os.environ if env is None else env
    raw: dict[str, object] = {}
    for field, variable in ENV_NAMES.items():
        value = source.get(variable, "")
        if value != "":
            raw[field] = value
    raw.update({k: v for k, v in overrides.items() if v is not None})
    raw.setdefault("client_id", default_client_id())
    try:
        return msgspec.convert(raw, BridgeSettings, strict=False, dec_hook=_paths)
    except SettingsError:
        raise
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(exc, raw)) from None


def _paths(kind: type, value: object) -> object:
    # msgspec does not turn strings into Path by itself.
    if kind is Path and isinstance(value, str | Path):
        return Path(value)
    raise NotImplementedError(f"cannot convert {type(value).__name__} to {kind.__name__}")


def _explain(exc: msgspec.ValidationError, raw: Mapping[str, object]) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.batch_size`"; name the variable and its value.
    message = str(exc)
    if message.startswith("CELLTRAIL_"):
        return message  # raised by __post_init__, already phrased for people
    text, marker, path = message.partition(" - at `$.")
    if marker:
        field = path.rstrip("`").split(".")[0].split("[")[0]
        shown = "***" if field in _SECRETS else repr(raw.get(field))
        return f"{ENV_NAMES.get(field, field)}={shown}: {text}"
    return f"invalid bridge settings: {message}"
