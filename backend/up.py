"""`celltrail up`: the whole system in one command — database, broker, backend, bridge and, with
`--demo`, demo data and a simulated logger fleet. Ctrl-C stops everything in reverse order."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.db.migrate import APP_ROLE, migrate_url
from backend.db.pool import create_pool
from backend.embedded.mqtt import BRIDGE_USER, HEALTH_USER, EmbeddedBroker
from backend.embedded.ports import free_port, port_open
from backend.embedded.postgres import EmbeddedPostgres
from backend.services import patient_keys, record_keys
from backend.settings import Settings

log = logging.getLogger(__name__)

DATABASE_NAME = "celltrail"
OWNER_ROLE = "celltrail_owner"
BRIDGE_USERNAME = "bridge"
BRIDGE_KEY_NAME = "celltrail up (local bridge)"
DEMO_ADMIN_PASSWORD = "celltrail-admin"  # noqa: S105 - demo only, printed at start


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


@dataclass
class Stack:
    """Everything `up` started, so it can be stopped in reverse order."""

    children: list[Child] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        process = subprocess.Popen(args, env=env)
        child = Child(name, process)
        self.children.append(child)
        log.info("started", extra={"component": name, "pid": process.pid})
        return child

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log.warning("did not stop in time; killing", extra={"component": child.name})
                child.process.kill()
                child.process.wait()
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception:
                # Keep stopping the rest; the message says what was left behind.
                log.exception("could not stop a component cleanly")


@dataclass(frozen=True)
class DatabaseUrls:
    """Where the backend connects (the application role) and where migrations, backup and restore
    connect (the schema owner); the same URL when only CELLTRAIL_DATABASE_URL is configured."""

    app: str
    owner: str
    # The embedded server's password file (libpq's PGPASSFILE): the URLs carry no password.
    passfile: Path | None = None


def start_database(settings: Settings, stack: Stack) -> DatabaseUrls:
    if settings.database_url:
        return DatabaseUrls(settings.database_url, settings.owner_database_url or settings.database_url)
    cluster = EmbeddedPostgres(settings.data_path / "postgres")
    running = cluster.running_port()
    if running is not None:
        cluster.port = running
        log.info("reusing the embedded PostgreSQL already running", extra={"port": running})
    else:
        cluster.start()
        stack.cleanups.append(cluster.stop)
    # The owner runs migrations and owns the schema; the backend runs as the application role (the
    # grants of backend/db/migrate.py). Their passwords are in the password file, never in a URL.
    cluster.ensure_roles([OWNER_ROLE, APP_ROLE])
    cluster.ensure_database(DATABASE_NAME, OWNER_ROLE)
    cluster.adopt_schema(DATABASE_NAME, OWNER_ROLE)
    os.environ["PGPASSFILE"] = str(cluster.passfile.resolve())
    return DatabaseUrls(
        cluster.role_url(APP_ROLE, DATABASE_NAME, password=False),
        cluster.role_url(OWNER_ROLE, DATABASE_NAME, password=False),
        cluster.passfile.resolve(),
    )


@dataclass(frozen=True)
class BrokerAccess:
    """The broker's URL and, for the embedded one, who signs in with what: the passwords it generated
    for the bridge and the health probe, and the file of the simulated loggers' own."""

    url: str
    credentials: dict[str, str] = field(default_factory=dict)
    logger_credentials: Path | None = None

    def env_for(self, user: str) -> dict[str, str]:
        """CELLTRAIL_MQTT_USERNAME/PASSWORD for a child signing in as `user` (nothing for a configured
        broker: the operator's own variables pass through)."""
        if user not in self.credentials:
            return {}
        return {"CELLTRAIL_MQTT_USERNAME": user, "CELLTRAIL_MQTT_PASSWORD": self.credentials[user]}

    def describe(self) -> str:
        """The URL, and where the embedded broker's passwords are (never the passwords)."""
        if self.logger_credentials is None:
            return self.url
        return f"{self.url}   (passwords in {self.logger_credentials.parent / 'credentials'})"


def start_broker(settings: Settings, stack: Stack, loggers: list[str] | None = None) -> BrokerAccess:
    """The configured broker, or the embedded one: authenticated, with the production ACL, and a
    generated password (kept 0600 in <data dir>/mqtt) for the bridge, the probe and each of `loggers`."""
    if settings.mqtt_url:
        return BrokerAccess(settings.mqtt_url)
    port = 1883 if not port_open("127.0.0.1", 1883) else free_port()
    broker = EmbeddedBroker(settings.data_path / "mqtt", port, loggers=loggers or []).start()
    stack.cleanups.append(broker.stop)
    log.info("embedded MQTT broker running", extra={"broker": broker.kind, "port": port})
    return BrokerAccess(broker.url, broker.credentials(), broker.logger_credentials_file.resolve())


def _simulated_loggers(count: int) -> list[str]:
    if not _component_available("firmware_bridge.simulator"):
        return []
    from firmware_bridge.simulator import logger_id

    return [logger_id(index) for index in range(1, count + 1)]


def _wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {seconds:.0f} s")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except OSError:
        return False


def _bridge_key_file(data_dir: Path) -> Path:
    """Where `up` keeps the local bridge's API key, readable by this user only."""
    return data_dir / "bridge.key"


def _read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    os.replace(temporary, path)


async def _prepare(
    database: DatabaseUrls,
    admin_password: str | None,
    bridge_key: str | None,
    demo: bool,
    loggers: int,
    fin: str = "A9999",
) -> str | None:
    """Schema, first administrator, the bridge's service account and its API key (demo data with
    `demo`). Returns a new key for the bridge when `bridge_key` is missing, revoked or not the bridge's;
    None when it still works."""
    from backend.demo import seed
    from backend.services import accounts, api_keys

    await migrate_url(database.owner)
    pool: Any = await create_pool(database.app, min_size=1, max_size=2)
    try:
        await accounts.ensure_first_admin(pool, admin_password)
        await api_keys.create_service_account(pool, BRIDGE_USERNAME, "Firmware bridge", accounts.HQ_SITE.code)
        fresh = await api_keys.provision_key(pool, BRIDGE_USERNAME, bridge_key, BRIDGE_KEY_NAME)
        if demo:
            await seed(pool, loggers, fin)
    finally:
        await pool.close()
    return fresh


def _component_available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _bridge_key(
    settings: Settings, database: DatabaseUrls, admin_password: str | None, demo: bool, loggers: int
) -> str:
    """The bridge authenticates with an API key, not a sign-in: failed sign-ins from this host (which
    lock the client address 127.0.0.1) cannot stall the readings. Made once, kept in the data directory,
    made again if an administrator revoked it."""
    key_file = _bridge_key_file(settings.data_path)
    bridge_key = _read_secret(key_file)
    fresh = asyncio.run(_prepare(database, admin_password, bridge_key, demo, loggers, settings.fin))
    if fresh is not None:
        _write_secret(key_file, fresh)
        bridge_key = fresh
    assert bridge_key is not None
    return bridge_key


def _component_env(
    settings: Settings, database: DatabaseUrls, mqtt_url: str, bridge_key: str
) -> dict[str, str]:
    """What the backend, the bridge and the simulator are started with: this process's environment with
    the embedded services' addresses and the key files' paths."""
    env = {k: v for k, v in os.environ.items()}
    for name in ("CELLTRAIL_BRIDGE_USERNAME", "CELLTRAIL_BRIDGE_PASSWORD"):
        env.pop(name, None)
    env.update(
        CELLTRAIL_DATABASE_URL=database.app,
        CELLTRAIL_MIGRATION_DATABASE_URL=database.owner,
        **({"PGPASSFILE": str(database.passfile)} if database.passfile else {}),
        CELLTRAIL_MQTT_URL=mqtt_url,
        CELLTRAIL_BACKEND_URL=f"http://{settings.host}:{settings.port}",
        CELLTRAIL_BRIDGE_API_KEY=bridge_key,
        CELLTRAIL_BRIDGE_BUFFER_DIR=str((settings.data_path / "bridge-buffer").resolve()),
        CELLTRAIL_RECORD_KEY_FILE=str(settings.record_key_path.resolve()),
        CELLTRAIL_PATIENT_KEY_FILE=str(settings.patient_key_path.resolve()),
        CELLTRAIL_CHECKPOINT_DIR=str(settings.checkpoint_path.resolve()),
    )
    return env


def _spawn_telemetry(
    stack: Stack, celltrail: list[str], env: dict[str, str], broker: BrokerAccess, demo_loggers: int | None
) -> None:
    """The bridge when its package is installed, and with the demo a simulated fleet."""
    if not _component_available("firmware_bridge.cli"):
        return
    stack.spawn("bridge", [*celltrail, "bridge"], {**env, **broker.env_for(BRIDGE_USER)})
    if demo_loggers is None:
        return
    simulate = [*celltrail, "simulate", "--loggers", str(demo_loggers), "--interval", "5"]
    if broker.logger_credentials is not None:
        # Each simulated logger signs in as itself, with its own password from this file.
        simulate += ["--credentials", str(broker.logger_credentials)]
    stack.spawn("simulator", simulate, env)


def _a_component_stopped(stack: Stack) -> bool:
    for child in stack.children:
        if child.process.poll() is not None:
            log.error(
                "a component stopped; shutting down",
                extra={"component": child.name, "exit_code": child.process.returncode},
            )
            return True
    return False


def run_up(settings: Settings, *, demo: bool, loggers: int) -> int:
    stack = Stack()
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        # Ours only when we create it (an existing one keeps its mode: the database's service user may
        # have been granted traverse on it, see EmbeddedPostgres._allow_traverse).
        settings.data_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The record key: created (0600) on a first run, read on later ones; the demo's journeys below are
        # linked with it, and the backend reads the same file.
        record_keys.configure(record_keys.ensure(settings), settings.checkpoint_path)
        # The patient key likewise, and before the database starts: creating a key narrows the data
        # directory, which the embedded database's service user must still traverse (the database opens
        # the way again when it starts, not while it runs).
        patient_keys.configure(patient_keys.ensure(settings))
        database = start_database(settings, stack)
        broker = start_broker(settings, stack, _simulated_loggers(loggers) if demo else [])
        admin_password = settings.admin_password or (DEMO_ADMIN_PASSWORD if demo else None)
        bridge_key = _bridge_key(settings, database, admin_password, demo, loggers)
        env = _component_env(settings, database, broker.url, bridge_key)
        celltrail = [sys.executable, "-m", "backend.cli"]
        # Each component signs in to the embedded broker as itself (the ACL's `healthcheck` and `bridge`).
        stack.spawn("backend", [*celltrail, "serve"], {**env, **broker.env_for(HEALTH_USER)})
        _wait_for(lambda: _healthy(settings.base_url) or stopping, 60, "the backend")
        _spawn_telemetry(stack, celltrail, env, broker, loggers if demo else None)
        _announce(settings, demo, admin_password, database.app, broker.describe())
        while not stopping:
            if _a_component_stopped(stack):
                stopping = True
            time.sleep(0.5)
        return 0
    finally:
        print("\nStopping Celltrail…", flush=True)
        stack.stop()


def _announce(
    settings: Settings, demo: bool, admin_password: str | None, database_url: str, mqtt_url: str
) -> None:
    from backend.demo import DEMO_PASSWORD, DEMO_USERS

    lines = [
        "",
        f"Celltrail is running at {settings.base_url}   (health: {settings.base_url}/healthz, "
        f"API description: {settings.base_url}/schema)",
        f"  database: {_describe_database(database_url)}",
        f"  broker:   {mqtt_url}",
    ]
    if admin_password and demo:
        lines.append(f"  sign in as admin / {admin_password}")
    if demo:
        people = ", ".join(username for username, *_ in DEMO_USERS)
        lines.append(f"  demo users ({people}) all use the password {DEMO_PASSWORD}")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


def _describe_database(url: str) -> str:
    """The URL without its password, and where the password is when it comes from a password file."""
    shown = _without_password(url)
    passfile = os.environ.get("PGPASSFILE")
    if passfile and "@" in shown and ":***@" not in shown:
        return f"{shown}   (password in {passfile})"
    return shown


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    return url
