"""Server-Sent Events at /api/v1/stream: custody events, alerts and shipment changes the caller may see,
resumable with Last-Event-ID (the outbox id)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.live.hub import Hub
from backend.services import stream as notices

KEEPALIVE_SECONDS = 15.0


@get(
    "/api/v1/stream",
    opt=policy(*(r for r in Role if r is not Role.BRIDGE)),
    operation_id="stream",
    tags=["live"],
)
async def stream(
    request: Request,  # type: ignore[type-arg]
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    hub: NamedDependency[Hub],
    after: Annotated[int | None, QueryParameter(name="after", ge=0)] = None,
) -> ServerSentEvent:
    """Live changes as SSE. Resume with the `Last-Event-ID` header (or `?after=`); without either, the
    stream starts with what happens from now on."""
    header = request.headers.get("last-event-id")

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        if header and header.isdigit():
            last = int(header)
        elif after is not None:
            last = after
        else:
            last = await notices.latest_id(pool)
        version = -1
        yield ServerSentEventMessage(data=None, comment="celltrail live", retry=2000)
        while not hub.closing:
            rows = await notices.notices_after(pool, principal, last)
            for row in rows:
                last = row.id
                body = msgspec.json.encode(
                    {"kind": row.kind, "coi": row.coi, "at": row.created_at, **row.payload}
                ).decode()
                yield ServerSentEventMessage(data=body, event=row.kind, id=row.id)
            if rows:
                continue
            new_version = await hub.wait(version, KEEPALIVE_SECONDS)
            if hub.closing:
                # The server is stopping: end the response so it need not wait for this client.
                return
            if new_version == version:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
            version = new_version

    return ServerSentEvent(events())
