"""`celltrail archive` and `celltrail restore-archive`: the readings retention of issue 26
(backend/services/archive.py), run as the schema's owner, with a progress bar per month on a terminal.
Exit status 0: done; 1: refused or failed (the message says why; nothing was lost); 2: not configured."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from backend.settings import PREFIX, load_settings

if TYPE_CHECKING:
    from rich.progress import Progress


def configure_archive_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        f"Archive every month of readings that ended more than {PREFIX}READINGS_HOT_MONTHS months ago "
        f"to a Parquet file with a signed manifest in {PREFIX}READINGS_ARCHIVE_DIR (default <data "
        "dir>/archive), then drop its partition. Reports keep reading archived months from the files."
    )
    parser.add_argument("--dry-run", action="store_true", help="list the months that are due; change nothing")


def configure_restore_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Check an archived month's manifest signature and file checksum, then put its readings back into "
        "the database as the month's partition. A file that fails a check is refused."
    )
    parser.add_argument("target", help="a month (YYYY-MM) archived from this database, or an archive file")


@contextmanager
def _bars(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bars:
        yield bars


def _bar(bars: Progress | None, label: str, total: int) -> Callable[[int], None] | None:
    if bars is None:
        return None
    task = bars.add_task(label, total=total)
    return lambda done: bars.advance(task, done)


def _run(body: Callable[[Any, Any], Any]) -> Any:
    """`body(conn, settings)` on the owner's connection. The schema is not migrated here (the server and
    `celltrail migrate` do that): a database without the archive's table is refused with what to do."""
    import asyncpg

    from backend.cli_database import databases
    from backend.services.archive import ArchiveError

    settings = load_settings(os.environ)

    async def run(owner_url: str) -> Any:
        conn = await asyncpg.connect(owner_url)
        try:
            if await conn.fetchval("SELECT to_regclass('archived_readings')") is None:
                raise ArchiveError("the database predates the readings archive: run `celltrail migrate`")
            return await body(conn, settings)
        finally:
            await conn.close()

    with databases(settings) as urls:
        return asyncio.run(run(urls.owner))


def run_archive(args: argparse.Namespace) -> int:
    import asyncpg

    from backend.services import archive, record_keys

    settings = load_settings(os.environ)
    if settings.readings_hot_months == 0:
        print(
            f"celltrail archive: {PREFIX}READINGS_HOT_MONTHS is 0 (retention off): nothing is archived. "
            "Set it to the months of readings to keep in the database, e.g. 24.",
            file=sys.stderr,
        )
        return 2
    keyring = record_keys.load(settings)
    directory = settings.readings_archive_path
    interactive = sys.stderr.isatty()

    async def body(conn: Any, _settings: Any) -> list[Any]:
        if args.dry_run:
            due: list[Any] = await archive.due(conn, settings.readings_hot_months)
            return due
        with _bars(interactive) as bars:
            done: list[Any] = await archive.archive_due(
                conn,
                keyring,
                directory,
                settings.readings_hot_months,
                lambda m: _bar(bars, f"{archive.month_label(m.range_from)}", m.rows),
            )
        return done

    try:
        results = _run(body)
    except archive.ArchiveError as exc:
        print(f"celltrail archive: {exc}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:
        # A lock not granted in time (ingest, another archiver), a month gone meanwhile: rolled back.
        print(f"celltrail archive: {exc}; that month stays in the database", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"celltrail archive: {directory}: {exc.strerror}; nothing was archived", file=sys.stderr)
        return 1
    if args.dry_run:
        for month in results:
            print(
                f"due: {archive.month_label(month.range_from)} ({month.partition}, {month.rows:,} readings)"
            )
        print(f"{len(results)} months due (keeping {settings.readings_hot_months} months)")
        return 0
    for done in results:
        print(
            f"archived {archive.month_label(done.range_from)}: {done.rows:,} readings, {done.bytes:,} bytes "
            f"-> {done.file}"
        )
    print(f"{len(results)} months archived")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    import asyncpg

    from backend.services import archive, record_keys

    settings = load_settings(os.environ)
    keyring = record_keys.load(settings)
    interactive = sys.stderr.isatty()

    async def body(conn: Any, _settings: Any) -> Any:
        with _bars(interactive) as bars:
            return await archive.restore(
                conn, keyring, args.target, lambda total: _bar(bars, f"restore {args.target}", total)
            )

    try:
        done = _run(body)
    except archive.ArchiveError as exc:
        print(f"celltrail restore-archive: {exc}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:
        print(f"celltrail restore-archive: {exc}; nothing was restored", file=sys.stderr)
        return 1
    print(
        f"restored {archive.month_label(done.range_from)} as {done.partition}: {done.rows:,} readings"
        + (f" ({done.joined_from_default} that arrived later joined it)" if done.joined_from_default else "")
    )
    return 0
