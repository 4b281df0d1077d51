"""`celltrail bridge` and `celltrail simulate`: argument parsers and entry points.

The ``celltrail`` console script wires these in; ``python -m firmware_bridge`` offers the same two verbs
on their own. Both run until SIGINT or SIGTERM and then stop cleanly.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sqlite3
import sys
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from firmware_bridge.settings import ENV_NAMES, BridgeSettings, MqttEndpoint, SettingsError, load_settings

if TYPE_CHECKING:
    from firmware_bridge.mqtt_clients import Publisher
    from firmware_bridge.simulator import Fleet

log = logging.getLogger(__name__)


def configure_bridge_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Forward logger telemetry from MQTT to the Celltrail backend: decode JSON and binary payloads, "
        "batch, buffer on disk while the backend is away, acknowledge only what is safely stored. "
        "Settings come from CELLTRAIL_* variables (see firmware_bridge/settings.py); flags override them."
    )
    parser.add_argument("--mqtt-url", help=f"broker URL, mqtt:// or mqtts:// ({ENV_NAMES['mqtt_url']})")
    parser.add_argument("--backend-url", help=f"backend base URL ({ENV_NAMES['backend_url']})")
    parser.add_argument(
        "--client-id", help=f"MQTT client id, stable across restarts ({ENV_NAMES['client_id']})"
    )
    parser.add_argument(
        "--shared-group", help=f"MQTT 5 shared-subscription group ({ENV_NAMES['shared_group']})"
    )
    parser.add_argument("--buffer-dir", help=f"disk buffer directory ({ENV_NAMES['buffer_dir']})")
    parser.add_argument("--batch-size", type=int, help=f"readings per batch ({ENV_NAMES['batch_size']})")
    parser.add_argument(
        "--batch-ms", type=int, help=f"longest wait before a batch goes ({ENV_NAMES['batch_ms']})"
    )
    parser.add_argument(
        "--metrics-port", type=int, help=f"Prometheus /metrics port, 0 = off ({ENV_NAMES['metrics_port']})"
    )
    parser.add_argument(
        "--api-key-file",
        help=f"read the service account's API key from this file (else {ENV_NAMES['api_key']}); "
        "a file keeps the key out of the process list",
    )
    _add_log_level(parser)


def _read_key(path: str | None) -> str | None:
    if path is None:
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def run_bridge(args: argparse.Namespace) -> int:
    from firmware_bridge.bridge import Bridge

    _configure_logging(args.log_level)
    try:
        settings = load_settings(
            mqtt_url=args.mqtt_url,
            backend_url=args.backend_url,
            client_id=args.client_id,
            shared_group=args.shared_group,
            buffer_dir=args.buffer_dir,
            batch_size=args.batch_size,
            batch_ms=args.batch_ms,
            metrics_port=args.metrics_port,
            api_key=_read_key(args.api_key_file),
        )
    except OSError as exc:
        print(f"celltrail bridge: cannot read the API key file: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"celltrail bridge: {exc}", file=sys.stderr)
        return 2
    with _stop_on_signals() as stop:
        try:
            bridge = Bridge(settings)
        except (OSError, sqlite3.Error) as exc:
            print(f"celltrail bridge: cannot open {settings.buffer_dir}: {exc}", file=sys.stderr)
            return 1
        return 0 if bridge.run(stop) else 1


def configure_simulate_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Simulate a fleet of temperature loggers (2-8 °C boxes, LN2 dry shippers, room-temperature boxes) "
        "publishing Celltrail telemetry over MQTT, with excursions, offline backlogs, battery drain, "
        "duplicate and out-of-order delivery; some loggers use the binary frame."
    )
    parser.add_argument("--loggers", type=_positive_int, default=10, help="number of loggers (default 10)")
    parser.add_argument(
        "--interval", type=_positive_float, default=60.0, help="seconds between samples (default 60)"
    )
    parser.add_argument(
        "--speedup",
        type=_positive_float,
        default=1.0,
        help="simulated seconds per wall second (default 1); time starts --history hours back and never "
        "runs ahead of the wall clock",
    )
    parser.add_argument(
        "--history",
        type=float,
        default=None,
        help="hours of past to replay first (default 0, or 24 with --speedup > 1)",
    )
    parser.add_argument(
        "--duration", type=_positive_float, default=None, help="stop after this many wall seconds"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--binary-share", type=float, default=0.1, help="share of loggers using the binary frame"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=1.0, help="multiplier for injected faults, 0 = none"
    )
    parser.add_argument(
        "--bad-rate", type=float, default=0.0, help="chance a message is corrupted (dead letters)"
    )
    parser.add_argument(
        "--connections", type=_positive_int, default=1, help="MQTT connections to spread loggers over"
    )
    parser.add_argument("--mqtt-url", help=f"broker URL ({ENV_NAMES['mqtt_url']})")
    parser.add_argument(
        "--credentials",
        help="file of `logger_id:password` lines: each logger then signs in as itself on a connection of "
        "its own, as the per-logger ACL of deploy/mosquitto/acl requires (`celltrail up --demo` passes "
        "the embedded broker's); without it all loggers share CELLTRAIL_MQTT_USERNAME's connections",
    )
    _add_log_level(parser)


def _logger_credentials(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))


class _CredentialsError(Exception):
    pass


def _own_publishers(
    path: str | None, fleet: Fleet, endpoint: MqttEndpoint, ca_file: str | None
) -> dict[str, Publisher]:
    """One connection per logger, signed in as that logger, when a credentials file is given."""
    from firmware_bridge.mqtt_clients import Publisher

    if not path:
        return {}
    try:
        credentials = _logger_credentials(path)
    except OSError as exc:
        raise _CredentialsError(f"cannot read --credentials: {exc.strerror}") from exc
    missing = [lg.logger_id for lg in fleet.loggers if lg.logger_id not in credentials]
    if missing:
        raise _CredentialsError(f"no password for {', '.join(missing)} in --credentials")
    return {
        lg.logger_id: Publisher(
            endpoint._replace(username=lg.logger_id, password=credentials[lg.logger_id]),
            f"celltrail-sim-{os.getpid()}-{lg.logger_id}",
            ca_file=ca_file,
        )
        for lg in fleet.loggers
    }


def run_simulate(args: argparse.Namespace) -> int:
    from firmware_bridge import simulator, topics
    from firmware_bridge.mqtt_clients import Publisher

    _configure_logging(args.log_level)
    try:
        settings: BridgeSettings = load_settings(mqtt_url=args.mqtt_url)
    except SettingsError as exc:
        print(f"celltrail simulate: {exc}", file=sys.stderr)
        return 2
    history_h = args.history if args.history is not None else (24.0 if args.speedup > 1 else 0.0)
    # Corruption is its own knob: a demo of dead letters should not need every other fault turned up.
    faults = dataclasses.replace(
        simulator.FaultRates().scaled(args.fault_rate), bad_payload_chance=args.bad_rate
    )
    clock = simulator.SimClock(args.speedup, history_h * 3600.0)
    fleet = simulator.Fleet(
        args.loggers,
        args.interval,
        clock.sim_start,
        seed=args.seed,
        faults=faults,
        binary_share=args.binary_share,
    )
    endpoint = settings.mqtt_endpoint()
    ca_file = str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None
    try:
        own = _own_publishers(args.credentials, fleet, endpoint, ca_file)
    except _CredentialsError as exc:
        print(f"celltrail simulate: {exc}", file=sys.stderr)
        return 2
    publishers = list(own.values()) or [
        Publisher(endpoint, f"celltrail-sim-{os.getpid()}-{i}", ca_file=ca_file)
        for i in range(args.connections)
    ]
    for publisher in publishers:
        if not publisher.start(timeout=10.0):
            log.warning(
                "broker at %s:%d not reachable yet; messages wait in memory", endpoint.host, endpoint.port
            )

    def publish(message: simulator.Outgoing) -> None:
        parsed = topics.parse_topic(message.topic)
        if own and parsed is not None:
            own[parsed.logger_id].publish(message.topic, message.payload, retain=message.retain)
            return
        # One logger always uses the same connection, so its own messages keep their order.
        key = zlib.crc32(parsed.logger_id.encode()) if parsed else 0
        publishers[key % len(publishers)].publish(message.topic, message.payload, retain=message.retain)

    log.info(
        "simulating %d loggers every %g s at %gx from %g h ago on %s:%d",
        args.loggers,
        args.interval,
        args.speedup,
        history_h,
        endpoint.host,
        endpoint.port,
    )
    with _stop_on_signals() as stop:
        stats = simulator.run_fleet(fleet, clock, publish, stop, duration_s=args.duration)
    for publisher in publishers:
        if not publisher.flush(timeout=10.0):
            log.warning("%d messages not confirmed by the broker at exit", publisher.outstanding)
        publisher.stop()
    log.info("simulation finished: %s", stats)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m firmware_bridge bridge|simulate ...``"""
    # The disk buffer and rejected batches hold readings: whatever else gets created, this user's only.
    os.umask(0o077)
    parser = argparse.ArgumentParser(prog="python -m firmware_bridge")
    verbs = parser.add_subparsers(dest="verb", required=True)
    configure_bridge_parser(verbs.add_parser("bridge", help="run the MQTT -> backend bridge"))
    configure_simulate_parser(verbs.add_parser("simulate", help="run a fleet of virtual loggers"))
    args = parser.parse_args(argv)
    return run_bridge(args) if args.verb == "bridge" else run_simulate(args)


def _add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _configure_logging(level: str) -> None:
    # The console script may have configured logging already; only set it up when nobody has.
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("firmware_bridge").setLevel(level)
    # httpx logs every request at INFO: one line per ingest batch would drown what matters.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level)))


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value
