"""The `celltrail` command. Each verb imports what it needs only when it runs, so `celltrail scan` on a
courier's machine works without the server packages installed."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from backend.cli_database import databases, settings_of
from backend.private_files import PRIVATE_UMASK
from backend.settings import SettingsError

if TYPE_CHECKING:
    pass

Runner = Callable[[argparse.Namespace], int]

BACKUP_HELP = (
    "Dump the database (CELLTRAIL_DATABASE_URL, or the embedded one in CELLTRAIL_DATA_DIR) with the "
    "pg_dump that ships with the server. Safe while Celltrail runs: the dump is one consistent snapshot."
)
RESTORE_HELP = (
    "Restore a `celltrail backup` file into CELLTRAIL_DATABASE_URL (or the embedded database) in one "
    "transaction, then verify every case's custody chain with the record keyring (exit status 3 if one "
    "does not verify, 4 if one cannot be verified without a missing key). Stop "
    "the backend first. The target must be empty unless --clean."
)


# ------------------------------------------------------------------------------------------------- verbs


def cmd_up(args: argparse.Namespace) -> int:
    from backend.logs import configure_logging
    from backend.up import run_up

    settings = settings_of(args)
    configure_logging(settings)
    return run_up(settings, demo=args.demo, loggers=args.loggers)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from backend.app import create_app
    from backend.logs import configure_logging

    settings = settings_of(args)
    configure_logging(settings)
    if args.workers > 1:
        uvicorn.run(
            "backend.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=args.workers,
            log_config=None,
            access_log=False,
            loop="uvloop",
            http="httptools",
            # The client address is ours to work out (CELLTRAIL_TRUSTED_PROXIES, backend/api/clients.py);
            # uvicorn's would trust X-Forwarded-For from 127.0.0.1 by default.
            proxy_headers=False,
        )
        return 0
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from backend.db.migrate import migrate_url

    settings = settings_of(args)
    with databases(settings) as urls:
        applied = asyncio.run(migrate_url(urls.owner))
    print("\n".join(f"applied {name}" for name in applied) or "the schema is up to date")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from backend.backup import BackupError, backup, default_file_name

    settings = settings_of(args)
    out = Path(args.out) if args.out else Path(default_file_name())
    try:
        with databases(settings) as urls:
            report = backup(urls.owner, out)
    except BackupError as exc:
        print(f"celltrail backup: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {report.path} ({report.size:,} bytes, {report.tables} tables)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from backend.backup import BackupError, restore
    from backend.services import record_keys

    settings = settings_of(args)
    try:
        # The restored chains are checked with the record keyring; without it they are unverifiable.
        record_keys.configure(record_keys.load(settings))
    except record_keys.RecordKeyError as exc:
        print(f"celltrail restore: {exc}; the chains cannot be verified", file=sys.stderr)
    try:
        with databases(settings) as urls:
            report = restore(urls.owner, Path(args.file), clean=args.clean)
    except BackupError as exc:
        print(f"celltrail restore: {exc}", file=sys.stderr)
        return 1
    chains = report.chains
    print(f"restored {report.tables} tables from {args.file}")
    print(f"custody chains: {chains.verified} of {chains.cases} verify")
    for coi in chains.broken:
        print(
            f"chain of {coi} does NOT verify: GET /api/v1/cases/{coi}/verify names the break", file=sys.stderr
        )
    for coi in chains.unverifiable:
        print(f"chain of {coi} is unverifiable: its record key is not in the keyring", file=sys.stderr)
    return 3 if chains.broken else 4 if chains.unverifiable else 0


def _delegate(module: str, configure: str, run: str, what: str) -> tuple[Callable[[Any], None], Runner]:
    """Verbs implemented by another package of ours, loaded only when that package is installed."""
    import importlib

    try:
        target = importlib.import_module(module)
    except ImportError as exc:
        message = f"`celltrail {what}` needs the {module.split('.')[0]} package and its extra ({exc.name})"

        def unavailable(_args: argparse.Namespace) -> int:
            print(message, file=sys.stderr)
            return 2

        return (lambda _parser: None), unavailable
    configure_fn: Callable[[Any], None] = getattr(target, configure)
    run_fn: Runner = getattr(target, run)
    return configure_fn, run_fn


# ------------------------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celltrail",
        description="Chain of identity, chain of custody and cold chain for cell therapies.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    up = verbs.add_parser("up", help="run the whole system (embedded PostgreSQL and MQTT unless configured)")
    up.add_argument("--demo", action="store_true", help="add demo sites, users and a simulated logger fleet")
    up.add_argument("--loggers", type=int, default=12, help="simulated loggers with --demo (default 12)")
    up.add_argument("--host", help="listen address (default CELLTRAIL_HOST or 127.0.0.1)")
    up.add_argument("--port", type=int, help="listen port (default CELLTRAIL_PORT or 8000)")
    up.set_defaults(run=cmd_up)

    serve = verbs.add_parser("serve", help="run the backend API (needs CELLTRAIL_DATABASE_URL)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(run=cmd_serve)

    migrate = verbs.add_parser("migrate", help="apply database migrations (idempotent)")
    migrate.set_defaults(run=cmd_migrate)

    backup_verb = verbs.add_parser(
        "backup", help="dump the database (pg_dump custom format) to a file", description=BACKUP_HELP
    )
    backup_verb.add_argument("--out", help="the dump file (default celltrail-<UTC time>.dump here)")
    backup_verb.set_defaults(run=cmd_backup)

    restore_verb = verbs.add_parser(
        "restore",
        help="restore a backup into an empty database, then verify every chain",
        description=RESTORE_HELP,
    )
    restore_verb.add_argument("file", help="a file written by `celltrail backup`")
    restore_verb.add_argument(
        "--clean",
        action="store_true",
        help="drop everything in the target database first (else it must be empty)",
    )
    restore_verb.set_defaults(run=cmd_restore)

    delegated = (
        ("user", "backend.admin_cli", "configure_user_parser", "cmd_user", "manage users: add, passwd, list"),
        (
            "apikey",
            "backend.admin_cli",
            "configure_apikey_parser",
            "cmd_apikey",
            "manage API keys of service accounts: create, list, revoke",
        ),
        ("site", "backend.admin_cli", "configure_site_parser", "cmd_site", "manage sites: add, list"),
        (
            "bridge",
            "firmware_bridge.cli",
            "configure_bridge_parser",
            "run_bridge",
            "forward logger telemetry from MQTT to the backend",
        ),
        (
            "simulate",
            "firmware_bridge.cli",
            "configure_simulate_parser",
            "run_simulate",
            "run a simulated fleet of temperature loggers",
        ),
        (
            "label",
            "labels.cli",
            "configure_parser",
            "run",
            "render and print bag, shipment, wristband labels",
        ),
        (
            "scan",
            "scanner.cli",
            "configure_parser",
            "run",
            "scan codes with a camera and record custody steps",
        ),
        ("report", "backend.reports.cli", "configure_parser", "run", "vein-to-vein record of a case"),
        ("key", "backend.record_cli", "configure_key_parser", "run_key", "the record keyring: rotate, list"),
        (
            "patient-key",
            "backend.patient_cli",
            "configure_parser",
            "run",
            "the patient keyring: rotate, list, reencrypt (every identity under the newest key)",
        ),
        (
            "checkpoint",
            "backend.record_cli",
            "configure_checkpoint_parser",
            "run_checkpoint",
            "write a signed checkpoint of every chain head now",
        ),
        (
            "archive",
            "backend.archive_cli",
            "configure_archive_parser",
            "run_archive",
            "archive months of readings past CELLTRAIL_READINGS_HOT_MONTHS to signed Parquet files",
        ),
        (
            "restore-archive",
            "backend.archive_cli",
            "configure_restore_parser",
            "run_restore",
            "verify an archived month of readings and put it back into the database",
        ),
        (
            "verify",
            "backend.record_cli",
            "configure_verify_parser",
            "run_verify",
            "check custody chains (keys, stored states, latest checkpoint)",
        ),
    )
    for verb, module, configure, run, help_text in delegated:
        sub = verbs.add_parser(verb, help=help_text)
        configure_fn, run_fn = _delegate(module, configure, run, verb)
        configure_fn(sub)
        sub.set_defaults(run=run_fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Everything this process and its children (PostgreSQL, Mosquitto, the bridge) create holds patient-
    # linked data or credentials: readable by this user only, whatever the login shell's umask says.
    os.umask(PRIVATE_UMASK)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
    except SettingsError as exc:
        print(f"celltrail: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
