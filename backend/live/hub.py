"""Wakes live streams when the outbox grows. One dedicated LISTEN connection per backend process (a pooled
connection would be reset with UNLISTEN when returned); NOTIFY is only a wake-up, the streams read the
outbox table from their last id, so a missed notification or a restart loses nothing.

At shutdown the streams end at once (`close_streams`): the server waits for open responses before it
stops, and a stream waiting for its next keep-alive would hold it that long. A client reconnects with
Last-Event-ID to another replica or the restarted server and misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import weakref
from types import FrameType
from typing import Any

import asyncpg

from backend.db.repo.outbox import CHANNEL, SETTLE_SECONDS

log = logging.getLogger(__name__)
# The hubs of this process, for the server's shutdown hook (which does not see the app's state).
_hubs: weakref.WeakSet[Hub] = weakref.WeakSet()


async def close_all_streams() -> None:
    """Called as the server's shutdown begins, before it waits for open responses."""
    for hub in list(_hubs):
        await hub.close_streams()


_closing_tasks: set[asyncio.Task[None]] = set()


def end_streams_on_exit_signals() -> None:
    """Have SIGINT and SIGTERM end the live streams at once, then do what they did before. The server
    (uvicorn) has its own handlers in place while it serves, and restores the earlier ones when it stops;
    the application's shutdown hook runs only after open responses finished, too late for a stream.
    Nothing is changed where a signal has no Python handler (the default would end the process anyway)
    or outside the main thread (where handlers cannot be set)."""
    loop = asyncio.get_running_loop()

    def begin() -> None:
        task = loop.create_task(close_all_streams())
        _closing_tasks.add(task)
        task.add_done_callback(_closing_tasks.discard)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous) or previous is signal.default_int_handler:
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(begin)
            previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except ValueError:
            return


class Hub:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._changed = asyncio.Condition()
        self._version = 0
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection[Any] | None = None
        self._settled_wake: asyncio.TimerHandle | None = None
        self._waking: set[asyncio.Task[None]] = set()
        self.closing = False
        _hubs.add(self)

    async def _wake(self) -> None:
        async with self._changed:
            self._version += 1
            self._changed.notify_all()

    def _on_notify(self, *_args: object) -> None:
        loop = asyncio.get_running_loop()
        self._keep(loop.create_task(self._wake()))
        # A stream may have stopped before an id that could still commit (outbox.after); once that id is
        # settled the streams read again, even if nothing new is written meanwhile.
        if self._settled_wake is None:
            self._settled_wake = loop.call_later(SETTLE_SECONDS + 0.1, self._wake_settled)

    def _wake_settled(self) -> None:
        self._settled_wake = None
        self._keep(asyncio.get_running_loop().create_task(self._wake()))

    def _keep(self, task: asyncio.Task[None]) -> None:
        # Held until done: the loop keeps only weak references to its tasks.
        self._waking.add(task)
        task.add_done_callback(self._waking.discard)

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

    async def close_streams(self) -> None:
        """End every stream now and any that starts later: the process is shutting down."""
        async with self._changed:
            self.closing = True
            self._version += 1
            self._changed.notify_all()

    async def stop(self) -> None:
        await self.close_streams()
        if self._settled_wake is not None:
            self._settled_wake.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()

    async def wait(self, seen: int, timeout: float) -> int:
        """Return the current version once it differs from `seen`, or after `timeout` seconds (at once
        when closing)."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._version != seen or self.closing), timeout
                )
            return self._version
