"""Titles and details of engine alerts, in words a coordinator can act on. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.domain.excursions.profiles import RuleSet
from backend.domain.excursions.state import (
    BATTERY,
    DATA_GAP,
    LID,
    MKT,
    PREDICTED,
    RATE,
    TEMPERATURE_HIGH,
    TEMPERATURE_LOW,
    Episode,
)


def _at(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def title(kind: str, shipment_id: str, rules: RuleSet) -> str:
    limits = rules.limits
    high = limits.get("high", limits.get("critical_high"))
    low = limits.get("low", limits.get("critical_low"))
    return {
        TEMPERATURE_HIGH: f"Shipment {shipment_id}: above {high:g} °C" if high is not None else "",
        TEMPERATURE_LOW: f"Shipment {shipment_id}: below {low:g} °C" if low is not None else "",
        RATE: f"Shipment {shipment_id}: temperature changing fast",
        PREDICTED: f"Shipment {shipment_id}: predicted to warm past {high} °C before arrival",
        MKT: f"Shipment {shipment_id}: mean kinetic temperature above {high} °C",
        BATTERY: f"Shipment {shipment_id}: logger battery low",
        LID: f"Shipment {shipment_id}: lid open",
        DATA_GAP: f"Shipment {shipment_id}: no data from the logger",
    }.get(kind, f"Shipment {shipment_id}: {kind}")


def detail(episode: Episode, logger_id: str | None, rules: RuleSet) -> str:
    by_id = {r.id: r for r in rules.rules}
    fired = "; ".join(by_id[r].describe() for r in episode.rules if r in by_id)
    unit = "%" if episode.kind == BATTERY else ("°C/min" if episode.kind == RATE else "°C")
    peak = "" if episode.peak is None else f", peak {episode.peak:.2f} {unit}"
    span = f"from {_at(episode.start)}" + (
        f" to {_at(episode.end)}" if episode.end is not None else ", ongoing"
    )
    text = f"logger {logger_id or '-'}: {span}{peak}, {episode.minutes_beyond:.0f} min"
    if fired:
        text += f"; rule {fired}"
    if episode.note:
        text += f"; {episode.note}"
    if episode.escalated_at is not None:
        text += f"; escalated to {episode.severity} at {_at(episode.escalated_at)}"
    return text
