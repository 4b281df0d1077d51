"""Wakes live streams when the outbox grows. One dedicated LISTEN connection per backend process (a pooled
connection would be reset with UNLISTEN when returned); NOTIFY is only a wake-up, the streams read the
outbox table from their last id, so a missed notification or a restart loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from backend.db.repo.outbox import CHANNEL

log = logging.getLogger(__name__)


class Hub:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._changed = asyncio.Condition()
        self._version = 0
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection[Any] | None = None

    async def _wake(self) -> None:
        async with self._changed:
            self._version += 1
            self._changed.notify_all()

    def _on_notify(self, *_args: object) -> None:
        asyncio.get_running_loop().create_task(self._wake())

    async def _listen_forever(self) -> None:
        while True:
            try:
                lost = asyncio.Event()
                self._connection = await asyncpg.connect(self.dsn)
                self._connection.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await self._connection.add_listener(CHANNEL, self._on_notify)
                # Anything committed while we were not listening must still reach the streams.
                await self._wake()
                await lost.wait()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("live listener lost the database; retrying", extra={"error": type(exc).__name__})
            finally:
                if self._connection is not None and not self._connection.is_closed():
                    await self._connection.close()
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()

    async def wait(self, seen: int, timeout: float) -> int:
        """Return the current version once it differs from `seen`, or after `timeout` seconds."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self._version != seen), timeout)
            return self._version
