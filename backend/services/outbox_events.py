"""Announcing a change on the outbox, written in the changing transaction and published after it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend.db.repo import outbox

if TYPE_CHECKING:
    from backend.db.types import Conn


async def announce(conn: Conn, kind: str, sites: list[str], coi: str | None, payload: Any) -> None:
    await outbox.publish(conn, kind, sites, coi, payload)
