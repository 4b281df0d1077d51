"""The composition root: `create_app(settings)` wires the database, the broker monitor and every route."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from backend.api import allocation, patients, planning
from backend.api.alerts import AlertsController
from backend.api.api_keys import ApiKeysController
from backend.api.audit import AuditController
from backend.api.auth import AuthController
from backend.api.bedside import shipment_receivers, verify_at_bedside
from backend.api.cases import CasesController, EventsController, UnitsController
from backend.api.decode import decode_frame, identify
from backend.api.epcis import EpcisController
from backend.api.errors import EXCEPTION_HANDLERS, render_pages_with
from backend.api.exports import ExportsController
from backend.api.health import healthz
from backend.api.ingest import ingest_telemetry, list_dead_letters
from backend.api.labels import label, print_label
from backend.api.loggers import LoggersController
from backend.api.metrics import metrics
from backend.api.organisations import OrganisationsController
from backend.api.profiles import ProfilesController
from backend.api.reports import ReportsController
from backend.api.scans import ScansController
from backend.api.shipments import ShipmentsController
from backend.api.sites import SitesController
from backend.api.stream import stream
from backend.api.subscriptions import SubscriptionsController
from backend.api.summaries import case_temperature, shipment_temperature
from backend.api.users import UsersController
from backend.db.migrate import migrate, migrate_url
from backend.db.pool import create_pool
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.http.security import authorize, provide_principal
from backend.live.hub import Hub, end_streams_on_exit_signals
from backend.services import auth, checkpoints, excursions, monitoring, patient_keys, record_keys, signing
from backend.services.accounts import ensure_first_admin
from backend.services.broker_probe import BrokerMonitor
from backend.services.handovers import alert_overdue_handovers
from backend.services.planning import bookings as planning_bookings
from backend.settings import Settings, SettingsError, load_settings
from backend.web import routes as web_routes
from backend.web import template_config
from backend.web.context import page_context
from backend.web.headers import security_headers, serves_https

log = logging.getLogger(__name__)
POOL_CLOSE_SECONDS = 10.0
# Every API command is a few kilobytes at most (each field is bounded: backend/api/schemas.py); a larger
# body is refused (413) before it is read into memory. Routes that take more say so themselves: a camera
# frame (decode), a telemetry batch (ingest), an EPCIS document (capture).
MAX_BODY_BYTES = 1024 * 1024

# Every resource module's controllers and handlers, registered here and nowhere else.
ROUTE_HANDLERS: Sequence[Any] = (
    healthz,
    AuthController,
    UsersController,
    ApiKeysController,
    SitesController,
    OrganisationsController,
    AuditController,
    # chain of identity and custody
    CasesController,
    UnitsController,
    EventsController,
    ShipmentsController,
    ScansController,
    AlertsController,
    stream,
    label,
    print_label,
    *patients.ROUTES,
    *allocation.ROUTES,
    # logger telemetry
    ingest_telemetry,
    list_dead_letters,
    LoggersController,
    metrics,
    # records and interoperability
    ReportsController,
    EpcisController,
    ExportsController,
    # cold chain: profiles, alert deliveries, summaries
    ProfilesController,
    SubscriptionsController,
    shipment_temperature,
    case_temperature,
    # orchestration
    *planning.ROUTES,
    decode_frame,
    identify,
    verify_at_bedside,
    shipment_receivers,
)


def create_app(settings: Settings) -> Litestar:
    if settings.database_url is None:
        raise SettingsError(
            "CELLTRAIL_DATABASE_URL is not set (`celltrail up` sets it for its embedded server)"
        )
    database_url = settings.database_url
    owner_url = settings.owner_database_url or database_url
    # Refused signatures count against the same sign-in limits as the sign-in form.
    signing.configure(auth.LoginLimits.of(settings))
    render_pages_with(page_context)
    excursions.configure(settings.gap_factor, settings.gap_settle_seconds)
    # The record key is read now, not at the first scan: a configured key file that is missing or
    # unreadable stops the start with a message naming the file (RecordKeyError is a SettingsError).
    # Without one configured, <data dir>/record.key is used, created on the first start.
    record_keys.configure(record_keys.ensure(settings), settings.checkpoint_path)
    # Likewise the patient keyring (patient identity's encryption keys, never in the database).
    patient_keys.configure(patient_keys.ensure(settings))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if owner_url != database_url:
            # Migrations as the schema owner; the pool (the application role) could not run them.
            await migrate_url(owner_url)
        pool = await create_pool(database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
        if owner_url == database_url:
            async with pool.acquire() as conn:
                await migrate(conn)
        await ensure_first_admin(pool, settings.admin_password)
        monitor = BrokerMonitor(
            settings.mqtt_url, settings.mqtt_username, settings.mqtt_password, settings.broker_check_seconds
        )
        await monitor.check()
        monitor.start()
        hub = Hub(database_url)
        hub.start()
        end_streams_on_exit_signals()
        housekeeping = asyncio.create_task(_housekeeping(pool, settings))
        app.state.pool = pool
        app.state.settings = settings
        app.state.broker = monitor
        app.state.hub = hub
        try:
            yield
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            for stop in (hub.stop(), monitor.stop()):
                try:
                    await asyncio.wait_for(stop, POOL_CLOSE_SECONDS)
                except TimeoutError:
                    log.warning("a background task did not stop in time")
            await _close_pool(pool)

    def provide_pool(state: State) -> Pool:
        pool: Pool = state.pool
        return pool

    def provide_broker(state: State) -> BrokerMonitor:
        monitor: BrokerMonitor = state.broker
        return monitor

    def provide_hub(state: State) -> Hub:
        hub: Hub = state.hub
        return hub

    def provide_settings() -> Settings:
        return settings

    return Litestar(
        route_handlers=[*ROUTE_HANDLERS, *web_routes()],
        template_config=template_config(),
        before_send=[security_headers(hsts=serves_https(settings.public_url))],
        lifespan=[lifespan],
        guards=[authorize],
        dependencies={
            "pool": Provide(provide_pool, sync_to_thread=False),
            "broker": Provide(provide_broker, sync_to_thread=False),
            "hub": Provide(provide_hub, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "principal": Provide(provide_principal, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Celltrail",
            version="1",
            description="Chain of identity, chain of custody and cold chain for cell therapies.",
            path="/schema",
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}
            ),
            security=[{"BearerToken": []}],
        ),
        signature_types=[Principal, Hub],
        debug=False,
        # Our own logging setup (backend.logs) applies; Litestar must not install a second one.
        logging_config=None,
    )


async def _close_pool(pool: Pool) -> None:
    """Close gracefully, but never hang a shutdown on a connection that was not given back."""
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
    except TimeoutError:
        log.warning(
            "database connections still in use at shutdown; closing them",
            extra={"seconds": POOL_CLOSE_SECONDS},
        )
        pool.terminate()


async def _housekeeping(pool: Pool, settings: Settings) -> None:
    """Periodic checks no request triggers: unconfirmed hand-overs, silent loggers, late shipments,
    pending alert deliveries and reminders, and readings the ingest path could not evaluate."""
    while True:
        await asyncio.sleep(settings.housekeeping_seconds)
        try:
            await alert_overdue_handovers(pool)
            await monitoring.run_periodic_checks(pool, settings)
            await planning_bookings.check_milestones(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.exception("housekeeping failed; will retry")
        try:
            await checkpoints.write_if_due(
                pool,
                record_keys.current(),
                settings.checkpoint_path,
                settings.checkpoint_minutes,
                settings.tsa_url,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, checkpoints.CheckpointError):
            # Logged, retried at the next round; the reason names no key.
            log.exception("writing a checkpoint failed; will retry")


def app_from_env() -> Litestar:
    """Factory for `uvicorn --factory backend.app:app_from_env` (several workers)."""
    return create_app(load_settings(os.environ))
