"""The two string formats the EPCIS JSON schema checks (RFC 3339 date-time, RFC 3986 URI) and the
timestamp forms EPCIS documents and event hashes use.

jsonschema checks a format only when an optional package for it is installed, and passes silently when
not; these checks are ours, so validation is the same on every machine."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

_DATE_TIME: Final = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[Tt]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)
# RFC 3986 absolute URI: a scheme, then only URI characters; `%` must start an escape, `#` comes once.
_URI: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]%]*")
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_uri(value: str) -> bool:
    return bool(_URI.fullmatch(value)) and not _BAD_ESCAPE.search(value) and value.count("#") <= 1


def is_date_time(value: str) -> bool:
    return _parse(value) is not None


def parse_date_time(value: str) -> datetime:
    """An aware datetime (microsecond precision) for an RFC 3339 timestamp; ValueError when it is not one."""
    parsed = _parse(value)
    if parsed is None:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time (e.g. 2026-01-10T08:00:00.000+01:00)")
    moment, fraction = parsed
    micros = (Decimal("0." + fraction) if fraction else Decimal(0)) * 1_000_000
    return moment + timedelta(microseconds=int(micros.to_integral_value(rounding=ROUND_HALF_UP)))


def hash_timestamp(value: str) -> str:
    """The event-hash form: UTC, `Z`, exactly three decimals (the third rounded half up)."""
    parsed = _parse(value)
    if parsed is None:
        return value.strip()
    moment, fraction = parsed
    millis = (Decimal("0." + fraction) if fraction else Decimal(0)).quantize(
        Decimal("0.001"), rounding=ROUND_HALF_UP
    )
    exact = moment + timedelta(milliseconds=int(millis * 1000))
    return exact.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(millis * 1000) % 1000:03d}Z"


def iso_utc(moment: datetime) -> str:
    """A stored time as EPCIS and the exports write it: UTC, milliseconds, e.g. 2026-01-10T08:00:00.000Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_offset(moment: datetime) -> str:
    """`+01:00` style offset of an aware datetime."""
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _parse(value: str) -> tuple[datetime, str] | None:
    """The moment in UTC to the whole second, and the fraction digits as written."""
    match = _DATE_TIME.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day = int(match["year"]), int(match["month"]), int(match["day"])
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    # RFC 3339 allows a leap second (60); Python cannot hold it, so it counts as the next second.
    if hour > 23 or minute > 59 or second > 60:
        return None
    zone = match["zone"]
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1)
    local = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    moment = local - offset + timedelta(seconds=max(second - 59, 0))
    return moment, match["fraction"] or ""
