"""Shared fixtures: one real PostgreSQL and one real MQTT broker per test session, and a fresh database
per test cloned from a migrated template (fast, and no test sees another's rows)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.db.migrate import APP_ROLE, migrate_url
from backend.services import record_keys
from backend.settings import Settings, load_settings
from tests.servers import Broker, start_postgres

ADMIN_PASSWORD = "admin-password-for-tests"
# The backend under test runs as the application role (least privilege, backend/db/migrate.py), signing
# in with this password; fixtures and tests that poke at the database use the superuser's URL.
APP_ROLE_PASSWORD = "app-role-password-for-tests"
_numbers = itertools.count()


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def as_app_role(url: str) -> str:
    """The same server and database, signed in as the application role."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = f"{APP_ROLE}:{APP_ROLE_PASSWORD}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _server_directory() -> Path:
    # Not under pytest's base temp: pytest resets that to 0700 whenever another pytest run starts, which
    # would lock out the unprivileged user PostgreSQL runs as under root.
    return Path(tempfile.mkdtemp(prefix="celltrail-test-"))


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A directory for servers a test starts itself (PostgreSQL data, `celltrail up` data dirs)."""
    path = _server_directory()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A server URL with superuser rights (database `postgres`)."""
    configured = os.environ.get("CELLTRAIL_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    directory = _server_directory()
    cluster = start_postgres(directory)
    try:
        yield cluster.url
    finally:
        cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_database(postgres_url: str) -> str:
    name = f"celltrail_template_{os.getpid()}"
    conn = await asyncpg.connect(postgres_url)
    try:
        # Roles are the cluster's: every database cloned from the template keeps the grants to it.
        await ensure_app_role(conn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    await migrate_url(_with_database(postgres_url, name))
    return name


@pytest.fixture
async def database_url(postgres_url: str, template_database: str) -> AsyncIterator[str]:
    name = f"celltrail_test_{os.getpid()}_{next(_numbers)}"
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    finally:
        await conn.close()
    yield _with_database(postgres_url, name)
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real MQTT broker: CELLTRAIL_TEST_MQTT_URL when set, else a private Mosquitto (or amqtt)."""
    configured = os.environ.get("CELLTRAIL_TEST_MQTT_URL")
    if configured:
        from urllib.parse import urlsplit

        parts = urlsplit(configured)

        class External:
            url = configured
            host = parts.hostname or "127.0.0.1"
            port = parts.port or 1883

        yield External()
        return
    broker = Broker(tmp_path_factory.mktemp("mqtt")).start()
    broker.host = "127.0.0.1"  # type: ignore[attr-defined]
    try:
        yield broker
    finally:
        broker.stop()


async def ensure_app_role(conn: asyncpg.Connection[Any]) -> None:
    """The application role, able to sign in with APP_ROLE_PASSWORD (created when missing)."""
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE):
        with contextlib.suppress(asyncpg.DuplicateObjectError):
            await conn.execute(await conn.fetchval("SELECT format('CREATE ROLE %I', $1::text)", APP_ROLE))
    statement = await conn.fetchval(
        "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", APP_ROLE, APP_ROLE_PASSWORD
    )
    await conn.execute(statement)


@pytest.fixture
def app_database_url(database_url: str) -> str:
    """The test's database as the application role (what the backend under test connects as)."""
    return as_app_role(database_url)


@pytest.fixture(scope="session")
def record_key_file() -> Iterator[Path]:
    """One record keyring for the session (0600, in a private temporary directory)."""
    directory = Path(tempfile.mkdtemp(prefix="celltrail-key-"))
    path = directory / "record.key"
    record_keys.add_key(path)
    yield path
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(autouse=True)
def record_keyring(record_key_file: Path) -> Iterator[None]:
    """Services called without an app (on a pool of the test's own) record with the session's key, as
    the app does once create_app has read it; a test that configures another keyring gets this one back."""
    keyring = record_keys.load(load_settings({}, record_key_file=str(record_key_file)))
    record_keys.configure(keyring)
    yield
    record_keys.configure(keyring)


@pytest.fixture
def checkpoint_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="celltrail-checkpoints-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings(database_url: str, mqtt_broker: Any, record_key_file: Path, checkpoint_dir: Path) -> Settings:
    return load_settings(
        {},
        database_url=as_app_role(database_url),
        migration_database_url=database_url,
        mqtt_url=mqtt_broker.url,
        admin_password=ADMIN_PASSWORD,
        log_format="text",
        broker_check_seconds=0.5,
        record_key_file=str(record_key_file),
        checkpoint_dir=str(checkpoint_dir),
    )


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path
