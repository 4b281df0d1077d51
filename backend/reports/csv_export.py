"""CSV exports: readings of a shipment or a logger, and alerts. A header row, ISO 8601 UTC times, `.` as
the decimal mark, and only what the requester's sites may see (another site's shipment or logger is
"not found", as everywhere else).

Free text that a spreadsheet would run as a formula (starting with = + - @) is prefixed with a quote."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from backend.db.repo import exports
from backend.db.repo.exports import AlertEntry, ReadingEntry
from backend.db.types import Pool
from backend.domain.access import Principal, Role
from backend.domain.errors import InvalidInput, NotFound
from backend.epcis.formats import iso_utc
from backend.services.shipments import get_shipment
from backend.services.visibility import site_filter

# One export answers with at most this many rows; beyond it the caller narrows since/until.
MAX_ROWS: Final = 100_000

READING_COLUMNS: Final = (
    "ts",
    "logger_id",
    "shipment_id",
    "temp_c",
    "battery_pct",
    "lid_open",
    "received_at",
)
ALERT_COLUMNS: Final = (
    "id",
    "started_at",
    "ended_at",
    "severity",
    "kind",
    "status",
    "title",
    "detail",
    "coi",
    "shipment_id",
    "unit_id",
    "logger_id",
    "sites",
    "peak_value",
    "acknowledged_by",
    "acknowledged_at",
    "ack_comment",
    "closed_by",
    "closed_at",
    "close_reason",
)


def check_range(since: datetime | None, until: datetime | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(
                f"{name} needs a UTC offset, e.g. 2026-01-31T08:00:00Z", field_errors={name: "no offset"}
            )
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must be before until", field_errors={"since": "not before until"})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def _text(value: str | None) -> str:
    # A spreadsheet runs a cell starting with one of these as a formula (CSV injection): prefix a quote.
    # Tab and carriage return are on the list too (OWASP): some spreadsheets skip them and then read
    # the formula behind them.
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _rows_or_narrow(rows: list[Any]) -> list[Any]:
    if len(rows) > MAX_ROWS:
        raise InvalidInput(
            f"more than {MAX_ROWS} rows match; narrow the time range with since and until",
            field_errors={"since": "range too large"},
        )
    return rows


def _csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def readings_csv(rows: list[ReadingEntry]) -> str:
    return _csv(
        READING_COLUMNS,
        (
            (r.ts, r.logger_id, r.shipment_id, r.temp_c, r.battery_pct, r.lid_open, r.received_at)
            for r in rows
        ),
    )


def alerts_csv(rows: list[AlertEntry]) -> str:
    return _csv(
        ALERT_COLUMNS,
        (
            (
                a.id,
                a.started_at,
                a.ended_at,
                a.severity,
                a.kind,
                a.status,
                _text(a.title),
                _text(a.detail),
                a.coi,
                a.shipment_id,
                a.unit_id,
                a.logger_id,
                a.sites,
                a.peak_value,
                a.acknowledged_by,
                a.acknowledged_at,
                _text(a.ack_comment),
                a.closed_by,
                a.closed_at,
                _text(a.close_reason),
            )
            for a in rows
        ),
    )


async def shipment_readings(
    pool: Pool, principal: Principal, shipment_id: str, since: datetime | None, until: datetime | None
) -> str:
    check_range(since, until)
    shipment = await get_shipment(pool, principal, shipment_id)
    async with pool.acquire() as conn:
        rows = await exports.readings_of_shipment(conn, shipment.id, since, until, MAX_ROWS + 1)
    return readings_csv(_rows_or_narrow(rows))


async def logger_readings(
    pool: Pool, principal: Principal, logger_id: str, since: datetime | None, until: datetime | None
) -> str:
    """A logger's readings; like the logger registry, visible to administrators and its owner site."""
    check_range(since, until)
    async with pool.acquire() as conn:
        registered, owner = await exports.logger_owner(conn, logger_id)
        visible = Role.ADMIN in principal.roles or (owner is not None and principal.at_site(owner))
        if not registered or not visible:
            raise NotFound(f"no logger {logger_id} visible to you")
        rows = await exports.readings_of_logger(conn, logger_id, since, until, MAX_ROWS + 1)
    return readings_csv(_rows_or_narrow(rows))


async def alerts(
    pool: Pool, principal: Principal, since: datetime | None, until: datetime | None, site: str | None
) -> str:
    check_range(since, until)
    visible = site_filter(principal)
    if site is not None and visible is not None and site not in visible:
        raise NotFound(f"no site {site} visible to you")
    async with pool.acquire() as conn:
        rows = await exports.alerts_between(conn, visible, site, since, until, MAX_ROWS + 1)
    return alerts_csv(_rows_or_narrow(rows))
