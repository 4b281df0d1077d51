"""Raising and resolving alerts by their condition, each change announced on the outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend.db.repo import alerts
from backend.services import chain
from backend.services.outbox_events import announce

if TYPE_CHECKING:
    from backend.db.types import Conn


async def raise_alert(
    conn: Conn,
    *,
    kind: str,
    severity: str,
    title: str,
    detail: str,
    condition_key: str,
    sites: list[str],
    coi: str | None = None,
    shipment_id: str | None = None,
    unit_id: str | None = None,
    event_id: int | None = None,
    rule: Any = None,
) -> int | None:
    alert_id = await alerts.open_alert(
        conn,
        kind=kind,
        severity=severity,
        title=title,
        detail=detail,
        condition_key=condition_key,
        sites=sites,
        started_at=chain.now(),
        coi=coi,
        shipment_id=shipment_id,
        unit_id=unit_id,
        event_id=event_id,
        rule=rule,
    )
    if alert_id is not None:
        await announce(
            conn,
            "alert",
            sites,
            coi,
            {
                "id": alert_id,
                "alert_kind": kind,
                "severity": severity,
                "title": title,
                "status": "open",
                "shipment_id": shipment_id,
            },
        )
    return alert_id


async def resolve_alert(conn: Conn, condition_key: str) -> None:
    alert_id = await alerts.resolve_condition(conn, condition_key, chain.now())
    if alert_id is not None:
        row = await alerts.get(conn, alert_id)
        assert row is not None
        await announce(conn, "alert", row.sites, row.coi, {"id": alert_id, "status": "resolved"})
