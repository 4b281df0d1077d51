"""What the coordinator's board says about each active shipment: derived from the board rows with pure
rules (ETA against plan, temperature against the profile, logger health), so the page only lays it out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import msgspec

from backend.db.repo import board
from backend.db.repo.board import BoardRow
from backend.db.types import Pool
from backend.domain.access import Principal
from backend.services.visibility import site_filter

# A logger that has not been heard from for this long is shown as silent, whatever its last status said.
SILENT_AFTER: Final = timedelta(minutes=15)
LOW_BATTERY_PCT: Final = 20
SEVERITIES: Final = ("critical", "warning", "info")
STATUSES: Final = ("planned", "packed", "in_transit", "arrived")


class BoardLine(msgspec.Struct, frozen=True, kw_only=True):
    row: BoardRow
    eta: datetime
    minutes_late: int  # positive when the ETA is after the planned arrival
    temperature: str  # "ok", "high", "low" or "none" (no reading yet)
    low_c: float | None
    high_c: float | None
    logger: str  # "online", "silent", "offline", "unknown" or "none"
    battery_pct: int | None
    battery_low: bool
    severity: str | None  # the worst open alert, None when there is none

    @property
    def search_text(self) -> str:
        return f"{self.row.id} {self.row.coi}".lower()


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    site: str | None = None
    status: str | None = None
    severity: str | None = None
    q: str | None = None


def eta_of(row: BoardRow) -> datetime:
    """Planned arrival, unless the shipment left late: then the planned duration counted from departure."""
    if row.arrived_at is not None:
        return row.arrived_at
    if row.departed_at is not None:
        return row.departed_at + (row.planned_arrival - row.planned_departure)
    return row.planned_arrival


def temperature_state(temp: float | None, low: float | None, high: float | None) -> str:
    if temp is None:
        return "none"
    if high is not None and temp > high:
        return "high"
    if low is not None and temp < low:
        return "low"
    return "ok"


def logger_state(row: BoardRow, now: datetime) -> str:
    if row.logger_id is None:
        return "none"
    heard = max((t for t in (row.logger_last_seen_at, row.reading_ts) if t is not None), default=None)
    if heard is None:
        return "unknown"
    if now - heard > SILENT_AFTER:
        return "silent"
    return "offline" if row.logger_online is False else "online"


def line_of(row: BoardRow, now: datetime) -> BoardLine:
    profile = row.profile if isinstance(row.profile, dict) else {}
    low, high = profile.get("low_c"), profile.get("high_c")
    eta = eta_of(row)
    battery = row.reading_battery_pct if row.reading_battery_pct is not None else row.logger_battery_pct
    counts = (row.alerts_critical, row.alerts_warning, row.alerts_info)
    severity = next((s for s, n in zip(SEVERITIES, counts, strict=True) if n), None)
    return BoardLine(
        row=row,
        eta=eta,
        minutes_late=round((eta - row.planned_arrival).total_seconds() / 60),
        temperature=temperature_state(row.reading_temp_c, low, high),
        low_c=low,
        high_c=high,
        logger=logger_state(row, now),
        battery_pct=battery,
        battery_low=battery is not None and battery < LOW_BATTERY_PCT,
        severity=severity,
    )


def matches(line: BoardLine, filters: Filters) -> bool:
    row = line.row
    if filters.site and filters.site not in (row.from_site, row.to_site):
        return False
    if filters.status and row.status != filters.status:
        return False
    if filters.severity and line.severity != filters.severity:
        return False
    return not (filters.q and filters.q.strip().lower() not in line.search_text)


async def active_lines(pool: Pool, principal: Principal, filters: Filters, now: datetime) -> list[BoardLine]:
    async with pool.acquire() as conn:
        rows = await board.active(conn, site_filter(principal), 500)
    lines = [line_of(row, now) for row in rows]
    # Shipments needing attention first: open critical alerts, then warnings, then by arrival.
    rank = {"critical": 0, "warning": 1, "info": 2, None: 3}
    lines.sort(key=lambda line: (rank[line.severity], line.eta))
    return [line for line in lines if matches(line, filters)]
