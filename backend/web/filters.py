"""Formatting helpers the templates use: times in the site's own time zone (24-hour, the zone named),
ages ("4 min ago"), temperatures, and machine words as a person reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import pass_context
from jinja2.runtime import Context
from litestar.plugins.jinja import JinjaTemplateEngine

# Field and refusal names the API uses, as a person says them.
WORDS: dict[str, str] = {
    "seals_intact": "seals intact",
    "shipper_intact": "shipper intact",
    "temperature_reviewed": "temperature reviewed",
    "in_transit": "in transit",
    "cleared_unacknowledged": "cleared, unacknowledged",
    "coi_mismatch": "wristband and bag of different patients",
    "not_infusable": "bag cannot be infused",
    "record_mismatch": "stored state disagrees with the record",
    "unknown_item": "unknown item",
    "unknown_receiver": "unknown receiver",
    "wrong_role": "wrong role",
    "wrong_site": "wrong site",
    "wrong_shipment": "wrong shipment",
    "out_of_order": "step out of order",
    "unexpected_item": "item not expected",
    "bedside_verify": "bedside check",
    "handover_confirm": "hand-over confirmed",
    "storage_location": "storage location",
}


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_when(moment: datetime | None, zone: str | None, with_date: bool = True) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(_zone(zone))
    pattern = "%d %b %H:%M %Z" if with_date else "%H:%M %Z"
    return local.strftime(pattern)


@pass_context
def when(context: Context, moment: datetime | None, site: str | None = None) -> str:
    """In the zone of `site` when given and known, else in the page's zone."""
    zones: dict[str, str] = context.get("zones") or {}
    zone = zones.get(site or "") or context.get("zone")
    return format_when(moment, zone)


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def celsius(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} °C"


def label(value: str | None) -> str:
    """`in_transit` -> `in transit`: machine words as a person reads them."""
    if value is None:
        return ""
    return WORDS.get(value, value.replace("_", " "))


def install(engine: JinjaTemplateEngine) -> None:
    filters: dict[str, Any] = {"when": when, "iso": iso, "ago": ago, "celsius": celsius, "label": label}
    engine.engine.filters.update(filters)
