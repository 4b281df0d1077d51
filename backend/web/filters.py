"""Formatting helpers the templates use: times in UTC, ages ("4 min ago"), temperatures."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar.plugins.jinja import JinjaTemplateEngine


def when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%d %b %H:%M UTC")


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
    return "" if value is None else value.replace("_", " ")


def install(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update({"when": when, "iso": iso, "ago": ago, "celsius": celsius, "label": label})
