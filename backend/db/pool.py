"""The asyncpg pool, with jsonb handled by msgspec so JSON columns round-trip as Python values."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from backend.db.types import Conn, Pool

_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder()


def _encode_json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=_encode_json, decoder=_json_decoder.decode, schema="pg_catalog", format="text"
        )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """Nothing to undo: pool connections never LISTEN or SET, and the one session-level advisory lock
    (migrations) is released in a `finally`; the live hub listens on a connection of its own, and asyncpg
    still rolls back an open transaction itself. Its default reset would cost a round trip per release."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        # Statements are few and hot; a generous cache avoids re-parsing them per request.
        statement_cache_size=256,
        command_timeout=60,
        reset=_keep_session,
    )
    assert pool is not None
    return pool


def pool_of(conn: Conn) -> Pool | None:
    """The pool `conn` was acquired from, or None for a connection of its own. asyncpg keeps the pool on
    the proxy's holder and has no public accessor, hence the guarded look-up: with another asyncpg
    layout this answers None and callers fall back to working on `conn` itself."""
    holder = getattr(conn, "_holder", None)
    pool = getattr(holder, "_pool", None)
    return pool if isinstance(pool, asyncpg.Pool) else None
