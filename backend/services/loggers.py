"""The logger registry: registration with a broker credential, changes (audited), the fleet's state and
reading history, and the calibration check shipments rely on.

Administrators manage every logger; coordinators only loggers owned by one of their sites, and a logger
of another site is "not found" to them rather than "forbidden", so ids of other sites do not leak.

A logger is *used* (carried by a shipment, its asset tag printed) by people of its owner site and of the
sites it is lent to; to everyone else it does not exist. The owner lends and revokes (audited). A logger
travels with one active shipment at a time, its assignment, which is also what its readings are filed by."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final

import msgspec
from msgspec import UNSET, UnsetType

from backend.db.repo import audit, loggers, readings, sites
from backend.db.repo import excursions as excursion_repo
from backend.db.repo.loggers import LoanRow, LoggerRow, ShipmentRef
from backend.db.repo.loggers import LoggerChanges as LoggerChanges  # the API builds one to register
from backend.db.repo.readings import ReadingRow
from backend.db.types import Pool
from backend.domain.access import Principal, Role
from backend.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from backend.services.passwords import hash_password

if TYPE_CHECKING:
    from backend.db.types import Conn

# Mosquitto 2.0's own password-file format: PBKDF2-HMAC-SHA512, 12-byte salt, 101 iterations.
MOSQUITTO_ITERATIONS: Final = 101
_MOSQUITTO_SALT_BYTES: Final = 12
MAX_HISTORY: Final = timedelta(days=400)


class Registered(msgspec.Struct, frozen=True, kw_only=True):
    logger: LoggerRow
    # Shown once, never stored in clear: the broker password and the line for Mosquitto's password file.
    broker_password: str | None
    mosquitto_passwd_line: str | None


class LoggerDetail(msgspec.Struct, frozen=True, kw_only=True):
    logger: LoggerRow
    last_reading: ReadingRow | None
    current_shipment: ShipmentRef | None
    last_seen_at: datetime | None
    calibration_problem: str | None


# -- pure helpers ----------------------------------------------------------------------------------


def mosquitto_password_line(
    username: str, password: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS
) -> str:
    """The `username:$7$...` line `mosquitto_passwd` would write for this password."""
    salt = salt if salt is not None else secrets.token_bytes(_MOSQUITTO_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    encoded_salt = base64.b64encode(salt).decode()
    return f"{username}:$7${iterations}${encoded_salt}${base64.b64encode(digest).decode()}"


def calibration_problem(logger_id: str, due: date | None, when: datetime) -> str | None:
    """Why a logger may not be trusted at `when` for want of calibration, or None. The due date is the
    last day the calibration holds (EU GDP: calibrate at least yearly)."""
    if due is None:
        return f"logger {logger_id} has no calibration due date on record"
    day = when.astimezone(UTC).date()
    if day > due:
        days = (day - due).days
        return f"logger {logger_id} was due for calibration on {due.isoformat()} ({days} days ago)"
    return None


def _visible(principal: Principal | None, owner_site: str | None) -> bool:
    if principal is None or Role.ADMIN in principal.roles:
        return True
    return owner_site is not None and principal.at_site(owner_site)


def _public(logger: LoggerRow) -> dict[str, object]:
    return {
        "model": logger.model,
        "firmware": logger.firmware,
        "calibration_due": logger.calibration_due.isoformat() if logger.calibration_due else None,
        "owner_site": logger.owner_site,
        "active": logger.active,
        "sample_interval_s": logger.sample_interval_s,
    }


async def _check_owner(conn: Conn, actor: Principal | None, owner_site: str | None) -> None:
    if owner_site is not None and not await sites.existing(conn, [owner_site]):
        raise InvalidInput(
            f"unknown site {owner_site}; create the site first", field_errors={"owner_site": "unknown site"}
        )
    if not _visible(actor, owner_site):
        raise PermissionDenied(
            "coordinators manage only loggers owned by one of their sites"
            + (f"; you are not assigned to {owner_site}" if owner_site else "; name your site as owner")
        )


async def _visible_logger(
    conn: Conn, actor: Principal | None, logger_id: str, lock: bool = False
) -> LoggerRow:
    logger = await loggers.get(conn, logger_id, for_update=lock)
    if logger is None or not _visible(actor, logger.owner_site):
        raise NotFound(f"no logger {logger_id}")
    return logger


def _new_credential(logger_id: str) -> tuple[str, str, str]:
    password = secrets.token_urlsafe(18)
    return password, hash_password(password), mosquitto_password_line(logger_id, password)


# -- commands and queries --------------------------------------------------------------------------


async def register(
    pool: Pool,
    actor: Principal | None,
    logger_id: str,
    changes: LoggerChanges,
    *,
    broker_password: bool = True,
) -> Registered:
    """Register a logger; with `broker_password`, issue its MQTT password (returned once)."""
    credential = _new_credential(logger_id) if broker_password else None
    async with pool.acquire() as conn, conn.transaction():
        await _check_owner(conn, actor, changes.owner_site)
        created = await loggers.insert(conn, logger_id, changes)
        if created is None:
            raise Conflict(f"logger {logger_id} is already registered", field_errors={"id": "taken"})
        if credential is not None:
            await loggers.set_broker_password_hash(conn, logger_id, credential[1])
            refreshed = await loggers.get(conn, logger_id)
            assert refreshed is not None
            created = refreshed
        await audit.record(
            conn,
            actor_id=actor.user_id if actor else None,
            actor_name=actor.username if actor else "system",
            action="create",
            entity="logger",
            entity_id=logger_id,
            new_value={**_public(created), "broker_password_issued": credential is not None},
        )
    return Registered(
        logger=created,
        broker_password=credential[0] if credential else None,
        mosquitto_passwd_line=credential[2] if credential else None,
    )


async def rotate_broker_password(pool: Pool, actor: Principal, logger_id: str, reason: str) -> Registered:
    """Issue a new MQTT password; the old one keeps working until the broker's password file changes."""
    password, password_hash, line = _new_credential(logger_id)
    async with pool.acquire() as conn, conn.transaction():
        await _visible_logger(conn, actor, logger_id, lock=True)
        await loggers.set_broker_password_hash(conn, logger_id, password_hash)
        logger = await loggers.get(conn, logger_id)
        assert logger is not None
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="broker_password",
            entity="logger",
            entity_id=logger_id,
            reason=reason,
        )
    return Registered(logger=logger, broker_password=password, mosquitto_passwd_line=line)


async def list_loggers(pool: Pool, actor: Principal) -> list[LoggerRow]:
    scope = None if Role.ADMIN in actor.roles else sorted(actor.sites)
    async with pool.acquire() as conn:
        return await loggers.list_all(conn, scope)


async def logger_detail(pool: Pool, actor: Principal, logger_id: str) -> LoggerDetail:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        logger = await _visible_logger(conn, actor, logger_id)
        last = await readings.latest(conn, logger_id)
        shipment = await loggers.active_shipment(conn, logger_id)
    seen = [t for t in (logger.last_seen_at, last.received_at if last else None) if t is not None]
    return LoggerDetail(
        logger=logger,
        last_reading=last,
        current_shipment=shipment,
        last_seen_at=max(seen, default=None),
        calibration_problem=calibration_problem(logger.id, logger.calibration_due, now),
    )


async def update_logger(
    pool: Pool,
    actor: Principal,
    logger_id: str,
    *,
    reason: str,
    model: str | UnsetType = UNSET,
    firmware: str | UnsetType = UNSET,
    calibration_due: date | UnsetType | None = UNSET,
    owner_site: str | UnsetType | None = UNSET,
    active: bool | UnsetType = UNSET,
    sample_interval_s: int | UnsetType | None = UNSET,
) -> LoggerRow:
    async with pool.acquire() as conn, conn.transaction():
        before = await _visible_logger(conn, actor, logger_id, lock=True)
        after = LoggerChanges(
            model=before.model if model is UNSET else model,
            firmware=before.firmware if firmware is UNSET else firmware,
            calibration_due=before.calibration_due if calibration_due is UNSET else calibration_due,
            owner_site=before.owner_site if owner_site is UNSET else owner_site,
            active=before.active if active is UNSET else active,
            sample_interval_s=before.sample_interval_s if sample_interval_s is UNSET else sample_interval_s,
        )
        ended: list[LoanRow] = []
        if after.owner_site != before.owner_site:
            await _check_owner(conn, actor, after.owner_site)
            # A loan is the owner's consent; a new owner has given none, so the old owner's loans end.
            why = f"owner changed to {after.owner_site}: {reason}"[:1000]  # the column holds 1000
            ended = await loggers.revoke_loans(conn, logger_id, None, actor.user_id, why)
        updated = await loggers.update(conn, logger_id, after)
        if after.sample_interval_s != before.sample_interval_s:
            # Gaps are judged by the interval: the leg under way is evaluated again with the new one (a
            # received leg keeps the review that was signed).
            await excursion_repo.mark_logger_leg(conn, logger_id)
        for loan in ended:
            await _audit_loan(conn, actor, "loan_revoke", loan)
        await audit.record(
            conn,
            actor_id=actor.user_id,
            actor_name=actor.username,
            action="update",
            entity="logger",
            entity_id=logger_id,
            old_value=_public(before),
            new_value=_public(updated),
            reason=reason,
        )
    return updated


async def reading_history(
    pool: Pool,
    actor: Principal,
    logger_id: str,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[ReadingRow]:
    """Readings with since <= ts < until, oldest first; by default the last 24 hours."""
    end = until or datetime.now(UTC)
    start = since or end - timedelta(hours=24)
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("since and until need a UTC offset, e.g. 2025-01-31T08:00:00Z")
    if start >= end:
        raise InvalidInput("since must be before until", field_errors={"since": "not before until"})
    if end - start > MAX_HISTORY:
        raise InvalidInput(
            f"ask for at most {MAX_HISTORY.days} days at a time", field_errors={"since": "range too long"}
        )
    async with pool.acquire() as conn:
        await _visible_logger(conn, actor, logger_id)
        return await readings.between(conn, logger_id, start, end, limit)


async def calibration_alert_needed(conn: Conn, logger_id: str, when: datetime) -> str | None:
    """For the shipment service: the reason to raise a calibration alert when `logger_id` travels at
    `when`, or None when its calibration holds. Raises NotFound for a logger that is not registered."""
    logger = await loggers.get(conn, logger_id)
    if logger is None:
        raise NotFound(f"no logger {logger_id}")
    return calibration_problem(logger.id, logger.calibration_due, when)


# -- use by shipments and labels, and lending ------------------------------------------------------


# One wording for a logger that does not exist, is deactivated, or belongs to a site the caller is not
# bound to: the answers must not tell them apart, or logger ids of other sites could be probed.
def unknown_logger(logger_id: str) -> str:
    return (
        f"logger {logger_id} is not registered, is deactivated, or is not available to your sites; "
        "use a logger of your site, or ask its owner site to lend it to yours"
    )


def _usable(actor: Principal, logger: LoggerRow, lent_sites: list[str]) -> bool:
    if Role.ADMIN in actor.roles:
        return True
    return (logger.owner_site is not None and actor.at_site(logger.owner_site)) or any(
        actor.at_site(site) for site in lent_sites
    )


async def usable_logger(conn: Conn, actor: Principal, logger_id: str, *, lock: bool = False) -> LoggerRow:
    """The logger, when the caller's sites may use it (owned or lent); NotFound otherwise, worded like a
    logger that does not exist."""
    logger = await loggers.get(conn, logger_id, for_update=lock)
    if logger is None or not _usable(actor, logger, await loggers.lent_to(conn, logger_id)):
        raise NotFound(unknown_logger(logger_id))
    return logger


async def claim_for_shipment(conn: Conn, actor: Principal, logger_id: str) -> LoggerRow:
    """For the shipment service, inside its transaction: check that `actor` may put the logger on a new
    shipment. The logger's row stays locked to the end of the transaction, so concurrent plans with one
    logger (and a revocation of its loan) take turns; the database's one-active-shipment index is the
    backstop for anything that writes shipments without coming here."""
    try:
        logger = await usable_logger(conn, actor, logger_id, lock=True)
    except NotFound:
        raise InvalidInput(unknown_logger(logger_id), field_errors={"logger_id": "unknown"}) from None
    if not logger.active:
        raise InvalidInput(unknown_logger(logger_id), field_errors={"logger_id": "unknown"})
    current = await loggers.active_shipment(conn, logger_id)
    if current is not None:
        raise Conflict(logger_busy(actor, logger_id, current), field_errors={"logger_id": "in use"})
    return logger


def logger_busy(actor: Principal, logger_id: str, current: ShipmentRef | None) -> str:
    # The shipment is named only to those who may see it: another site's shipment ids stay private.
    if current is not None and (
        Role.ADMIN in actor.roles or actor.at_site(current.from_site) or actor.at_site(current.to_site)
    ):
        where = f"shipment {current.id} ({current.status})"
    else:
        where = "another active shipment"
    return (
        f"logger {logger_id} already travels with {where}; a logger is free again once its shipment is "
        "received, so choose another logger"
    )


def _loan_record(loan: LoanRow) -> dict[str, object]:
    return {"site": loan.site, "lent_by": loan.lent_by, "lent_at": loan.lent_at.isoformat()}


async def _audit_loan(conn: Conn, actor: Principal, action: str, loan: LoanRow) -> None:
    lent = action == "loan"
    await audit.record(
        conn,
        actor_id=actor.user_id,
        actor_name=actor.username,
        action=action,
        entity="logger",
        entity_id=loan.logger_id,
        old_value=None if lent else _loan_record(loan),
        new_value=_loan_record(loan) if lent else None,
        reason=loan.reason if lent else loan.revoke_reason,
    )


async def lend(pool: Pool, actor: Principal, logger_id: str, site: str, reason: str) -> LoanRow:
    """Lend the logger to `site` (administrators, or coordinators of its owner site)."""
    async with pool.acquire() as conn, conn.transaction():
        logger = await _visible_logger(conn, actor, logger_id, lock=True)
        if logger.owner_site is None:
            raise Conflict(
                f"logger {logger_id} has no owner site, and only an owner lends; set its owner first",
                field_errors={"owner_site": "missing"},
            )
        if site == logger.owner_site:
            raise InvalidInput(
                f"{site} owns logger {logger_id}; lend it to another site", field_errors={"site": "owner"}
            )
        if not await sites.existing(conn, [site]):
            raise InvalidInput(f"unknown site {site}", field_errors={"site": "unknown site"})
        loan = await loggers.lend(conn, logger_id, site, actor.user_id, reason)
        if loan is None:
            raise Conflict(f"logger {logger_id} is already lent to {site}", field_errors={"site": "lent"})
        await _audit_loan(conn, actor, "loan", loan)
    return loan


async def revoke_loan(pool: Pool, actor: Principal, logger_id: str, site: str, reason: str) -> LoanRow:
    """End the loan: `site` can no longer plan shipments with the logger. A shipment already under way
    keeps it until received — the logger is in that box."""
    async with pool.acquire() as conn, conn.transaction():
        await _visible_logger(conn, actor, logger_id, lock=True)
        revoked = await loggers.revoke_loans(conn, logger_id, site, actor.user_id, reason)
        if not revoked:
            raise NotFound(f"logger {logger_id} is not lent to {site}")
        await _audit_loan(conn, actor, "loan_revoke", revoked[0])
    return revoked[0]


async def list_loans(pool: Pool, actor: Principal, logger_id: str) -> list[LoanRow]:
    async with pool.acquire() as conn:
        await _visible_logger(conn, actor, logger_id)
        return await loggers.loans(conn, logger_id)
