"""The logger registry: register (with a one-time broker password), list, inspect, change, rotate the
broker password, lend to another site and revoke the loan, and read a logger's readings. Administrators
anywhere; coordinators for loggers owned by their sites."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK
from msgspec import UNSET, UnsetType

from backend.api.reads import read, reads
from backend.api.schemas import Command, Reason, SiteCode
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import loggers
from firmware_bridge.ingest_contract import LOGGER_ID_PATTERN

LoggerId = Annotated[str, msgspec.Meta(pattern=LOGGER_ID_PATTERN, examples=["LGR-0001"])]
Label = Annotated[str, msgspec.Meta(max_length=100)]
MANAGERS = (Role.ADMIN, Role.COORDINATOR)
SampleInterval = Annotated[int, msgspec.Meta(ge=1, le=86400, examples=[300])]


class LoggerCreate(Command):
    id: LoggerId
    model: Label = ""
    firmware: Label = ""
    calibration_due: date | None = None
    owner_site: SiteCode | None = None
    active: bool = True
    # Seconds between two readings as the logger is configured: an interval longer than
    # CELLTRAIL_GAP_FACTOR times it is a data gap. Unset: learned from the readings.
    sample_interval_s: SampleInterval | None = None
    # Issue an MQTT password for the logger (returned once with its Mosquitto password-file line).
    issue_broker_password: bool = True


class LoggerUpdate(Command):
    reason: Reason
    model: Label | UnsetType = UNSET
    firmware: Label | UnsetType = UNSET
    calibration_due: date | UnsetType | None = UNSET
    owner_site: SiteCode | UnsetType | None = UNSET
    active: bool | UnsetType = UNSET
    # null: learn the interval from the readings again.
    sample_interval_s: SampleInterval | UnsetType | None = UNSET


class BrokerPasswordRotation(Command):
    reason: Reason


class LoanCreate(Command):
    site: SiteCode
    reason: Reason


class LoanRevocation(Command):
    reason: Reason


class LoanRead(msgspec.Struct, kw_only=True):
    id: int
    logger_id: str
    site: str
    lent_by: str
    lent_at: datetime
    reason: str
    revoked_by: str | None
    revoked_at: datetime | None
    revoke_reason: str | None


class ReadingRead(msgspec.Struct, kw_only=True):
    ts: datetime
    temp_c: float
    battery_pct: int | None
    lid_open: bool | None
    shipment_id: str | None
    received_at: datetime


class ShipmentSummary(msgspec.Struct, kw_only=True):
    id: str
    coi: str
    from_site: str
    to_site: str
    status: str


class LoggerRead(msgspec.Struct, kw_only=True):
    id: str
    model: str
    firmware: str
    calibration_due: date | None
    owner_site: str | None
    active: bool
    created_at: datetime
    broker_password_set_at: datetime | None
    online: bool | None
    status_at: datetime | None
    battery_pct: int | None
    reported_firmware: str | None
    sample_interval_s: int | None


class LoggerDetailRead(LoggerRead, kw_only=True):
    last_seen_at: datetime | None
    last_reading: ReadingRead | None
    current_shipment: ShipmentSummary | None
    calibration_problem: str | None


class LoggerCredential(msgspec.Struct, kw_only=True):
    logger: LoggerRead
    broker_password: str | None
    mosquitto_passwd_line: str | None
    note: str


def credential(registered: loggers.Registered) -> LoggerCredential:
    note = (
        "Shown once: configure the logger with this password and add the line to Mosquitto's password "
        "file (then reload Mosquitto)."
        if registered.broker_password
        else "No broker password was issued."
    )
    return LoggerCredential(
        logger=read(registered.logger, LoggerRead),
        broker_password=registered.broker_password,
        mosquitto_passwd_line=registered.mosquitto_passwd_line,
        note=note,
    )


class LoggersController(Controller):
    path = "/api/v1/loggers"
    tags = ("loggers",)

    @post("/", opt=policy(*MANAGERS), operation_id="registerLogger")
    async def register(
        self, data: JSONBody[LoggerCreate], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> LoggerCredential:
        """Register a logger; coordinators must name one of their sites as owner."""
        changes = loggers.LoggerChanges(
            model=data.model,
            firmware=data.firmware,
            calibration_due=data.calibration_due,
            owner_site=data.owner_site,
            active=data.active,
            sample_interval_s=data.sample_interval_s,
        )
        registered = await loggers.register(
            pool, principal, data.id, changes, broker_password=data.issue_broker_password
        )
        return credential(registered)

    @get("/", opt=policy(*MANAGERS), operation_id="listLoggers")
    async def list_loggers(
        self, principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> list[LoggerRead]:
        """Every logger for administrators; those of their sites for coordinators."""
        return reads(await loggers.list_loggers(pool, principal), LoggerRead)

    @get("/{logger_id:str}", opt=policy(*MANAGERS), operation_id="getLogger")
    async def get_logger(
        self, logger_id: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> LoggerDetailRead:
        """The logger with its last status, last reading, current shipment and calibration state."""
        detail = await loggers.logger_detail(pool, principal, logger_id)
        shipment = detail.current_shipment
        return LoggerDetailRead(
            **msgspec.structs.asdict(read(detail.logger, LoggerRead)),
            last_seen_at=detail.last_seen_at,
            last_reading=read(detail.last_reading, ReadingRead) if detail.last_reading else None,
            current_shipment=read(shipment, ShipmentSummary) if shipment else None,
            calibration_problem=detail.calibration_problem,
        )

    @patch("/{logger_id:str}", opt=policy(*MANAGERS), operation_id="updateLogger")
    async def update_logger(
        self,
        logger_id: FromPath[str],
        data: JSONBody[LoggerUpdate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> LoggerRead:
        """Change calibration date, firmware, model, owner, active or sampling interval; audited with
        the reason given."""
        row = await loggers.update_logger(
            pool,
            principal,
            logger_id,
            reason=data.reason,
            model=data.model,
            firmware=data.firmware,
            calibration_due=data.calibration_due,
            owner_site=data.owner_site,
            active=data.active,
            sample_interval_s=data.sample_interval_s,
        )
        return read(row, LoggerRead)

    @post(
        "/{logger_id:str}/broker-password",
        opt=policy(*MANAGERS),
        status_code=HTTP_200_OK,
        operation_id="rotateLoggerBrokerPassword",
    )
    async def rotate_broker_password(
        self,
        logger_id: FromPath[str],
        data: JSONBody[BrokerPasswordRotation],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> LoggerCredential:
        """Issue a new MQTT password (shown once); audited with the reason given."""
        return credential(await loggers.rotate_broker_password(pool, principal, logger_id, data.reason))

    @post("/{logger_id:str}/loans", opt=policy(*MANAGERS), operation_id="lendLogger")
    async def lend(
        self,
        logger_id: FromPath[str],
        data: JSONBody[LoanCreate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> LoanRead:
        """Lend the logger to another site, whose people may then plan shipments with it and print its
        asset tag until the loan is revoked; audited with the reason given."""
        return read(await loggers.lend(pool, principal, logger_id, data.site, data.reason), LoanRead)

    @get("/{logger_id:str}/loans", opt=policy(*MANAGERS), operation_id="listLoggerLoans")
    async def loans(
        self, logger_id: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> list[LoanRead]:
        """Every loan of the logger, open and revoked, newest first."""
        return reads(await loggers.list_loans(pool, principal, logger_id), LoanRead)

    @post(
        "/{logger_id:str}/loans/{site:str}/revoke",
        opt=policy(*MANAGERS),
        status_code=HTTP_200_OK,
        operation_id="revokeLoggerLoan",
    )
    async def revoke_loan(
        self,
        logger_id: FromPath[str],
        site: FromPath[str],
        data: JSONBody[LoanRevocation],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> LoanRead:
        """End the loan to `site`: it can no longer plan shipments with the logger (a shipment already
        under way keeps it until received); audited with the reason given."""
        revoked = await loggers.revoke_loan(pool, principal, logger_id, site, data.reason)
        return read(revoked, LoanRead)

    @get("/{logger_id:str}/readings", opt=policy(*MANAGERS), operation_id="listLoggerReadings")
    async def readings(
        self,
        logger_id: FromPath[str],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=10_000)] = 1000,
    ) -> list[ReadingRead]:
        """Readings with since <= ts < until, oldest first (default: the last 24 hours)."""
        rows = await loggers.reading_history(pool, principal, logger_id, since, until, limit)
        return reads(rows, ReadingRead)
