"""What the `celltrail` verbs share: settings from the command line and the environment, the database they
work on (the configured one, or the embedded one for the duration of the command), and a small pool for
commands that record."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from backend.settings import Settings, load_settings

if TYPE_CHECKING:
    from backend.up import DatabaseUrls


def settings_of(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    return load_settings(os.environ, **overrides)


@contextmanager
def databases(settings: Settings) -> Iterator[DatabaseUrls]:
    """The configured database (the application's URL and the owner's), or the embedded one (reused when
    `celltrail up` runs it, else started for the duration of this command)."""
    from backend.up import DatabaseUrls, Stack, start_database

    if settings.database_url:
        yield DatabaseUrls(settings.database_url, settings.owner_database_url or settings.database_url)
        return
    stack = Stack()
    try:
        yield start_database(settings, stack)
    finally:
        stack.stop()


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The application's URL of `databases` (what reads and records run as)."""
    with databases(settings) as urls:
        yield urls.app


def run_with_pool(args: argparse.Namespace, command: str, body: Callable[[Any], Awaitable[None]]) -> int:
    """Migrate, open a small pool, run `body(pool)`; a refusal (a weak password, a taken name, an unknown
    site) is printed as the command's own message and exits 1, never as a traceback."""
    from backend.db.migrate import migrate_url
    from backend.db.pool import create_pool
    from backend.domain.errors import DomainError

    async def run(urls: DatabaseUrls) -> int:
        await migrate_url(urls.owner)
        pool: Any = await create_pool(urls.app, min_size=1, max_size=2)
        try:
            await body(pool)
        except DomainError as exc:
            print(f"celltrail {command}: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            await pool.close()
        return 0

    with databases(settings_of(args)) as urls:
        return asyncio.run(run(urls))
