"""What every paho client of Celltrail shares: logging without shutdown noise, TCP_NODELAY on every
socket (without it QoS 1 traffic waits on the delayed-ACK timer and a busy broker link crawls), TLS and
credentials from the endpoint."""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from firmware_bridge.settings import MqttEndpoint

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 60


class _QuietShutdown(logging.Filter):
    """paho's network thread logs "Client is not connected" as an error when it takes one more turn
    after our own disconnect(); a lost connection is reported by on_disconnect anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


def paho_logger() -> logging.Logger:
    logger = logging.getLogger("firmware_bridge.paho")
    if not any(isinstance(f, _QuietShutdown) for f in logger.filters):
        logger.addFilter(_QuietShutdown())
    return logger


def _nodelay(client: paho.Client, userdata: Any, sock: Any) -> None:
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def configure_security(client: paho.Client, endpoint: MqttEndpoint, ca_file: str | None) -> None:
    if endpoint.tls:
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)


def prepare(client: paho.Client, endpoint: MqttEndpoint, ca_file: str | None) -> None:
    """The set-up every client gets before its own callbacks."""
    client.enable_logger(paho_logger())
    client.on_socket_open = _nodelay
    configure_security(client, endpoint, ca_file)


def plain_client(endpoint: MqttEndpoint, client_id: str, ca_file: str | None) -> paho.Client:
    """An MQTT 5 client for tools, tests and benchmarks (the bridge builds its own, see mqtt.py)."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    prepare(client, endpoint, ca_file)
    return client
