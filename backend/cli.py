"""The `celltrail` command. Each verb imports what it needs only when it runs, so `celltrail scan` on a
courier's machine works without the server packages installed."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from backend.private_files import PRIVATE_UMASK
from backend.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from backend.up import DatabaseUrls

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


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    return load_settings(os.environ, **overrides)


@contextmanager
def _databases(settings: Settings) -> Iterator[DatabaseUrls]:
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
def _database(settings: Settings) -> Iterator[str]:
    """The application's URL of `_databases` (what reads and records run as)."""
    with _databases(settings) as urls:
        yield urls.app


# ------------------------------------------------------------------------------------------------- verbs


def cmd_up(args: argparse.Namespace) -> int:
    from backend.logs import configure_logging
    from backend.up import run_up

    settings = _settings(args)
    configure_logging(settings)
    return run_up(settings, demo=args.demo, loggers=args.loggers)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from backend.app import create_app
    from backend.logs import configure_logging

    settings = _settings(args)
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

    settings = _settings(args)
    with _databases(settings) as urls:
        applied = asyncio.run(migrate_url(urls.owner))
    print("\n".join(f"applied {name}" for name in applied) or "the schema is up to date")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise SystemExit("the passwords differ; nothing was changed")
    return first


def _run_with_pool(args: argparse.Namespace, command: str, body: Callable[[Any], Awaitable[None]]) -> int:
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

    with _databases(_settings(args)) as urls:
        return asyncio.run(run(urls))


def cmd_user(args: argparse.Namespace) -> int:
    from backend.services import accounts

    password = _read_password(args) if args.action in ("add", "passwd") else ""

    async def body(pool: Any) -> None:
        if args.action == "add":
            user = await accounts.create_user(
                pool,
                None,
                username=args.username,
                full_name=args.full_name,
                password=password,
                roles=args.role,
                site_codes=args.site,
            )
            print(f"created {user.username} ({', '.join(user.roles)} at {', '.join(user.sites)})")
        elif args.action == "passwd":
            await accounts.set_password_as_system(pool, args.username, password)
            print(f"password of {args.username} changed; their tokens are revoked")
        else:
            for user in await accounts.list_users(pool):
                state = "" if user.active else "  (deactivated)"
                print(f"{user.username:20} {','.join(user.roles):28} {','.join(user.sites)}{state}")

    return _run_with_pool(args, "user", body)


def cmd_apikey(args: argparse.Namespace) -> int:
    from backend.services import api_keys

    async def body(pool: Any) -> None:
        if args.action == "create":
            if args.create_account and await api_keys.create_service_account(
                pool, args.username, args.full_name, args.site
            ):
                print(
                    f"created the service account {args.username} (role bridge at {args.site})",
                    file=sys.stderr,
                )
            issued = await api_keys.create_key(pool, None, args.username, args.name)
            # The key on standard output alone, so `KEY=$(celltrail apikey create ...)` works.
            print(
                f"created API key {issued.id} ({issued.hint}...) for {issued.username}; "
                "it is shown only now:",
                file=sys.stderr,
            )
            print(issued.key)
        elif args.action == "revoke":
            row = await api_keys.revoke_key(pool, None, args.key_id, args.reason)
            print(f"API key {row.id} ({row.hint}...) of {row.username} is revoked")
        else:
            for key in await api_keys.list_keys(pool, args.username):
                used = key.last_used_at.isoformat(timespec="minutes") if key.last_used_at else "never"
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
                print(
                    f"{key.id:<5} {key.username:16} {key.hint}... {key.name[:30]:30} "
                    f"created {key.created_at:%Y-%m-%d %H:%M}  last used {used}  {state}"
                )

    return _run_with_pool(args, "apikey", body)


def cmd_site(args: argparse.Namespace) -> int:
    from backend.db.repo.sites import SiteRow
    from backend.services import accounts

    async def body(pool: Any) -> None:
        if args.action == "add":
            site = SiteRow(args.code, args.name, args.kind, args.time_zone, args.gln)
            await accounts.create_site(pool, None, site)
            print(f"created site {site.code}")
        else:
            for site in await accounts.list_sites(pool):
                print(f"{site.code:12} {site.kind:14} {site.time_zone:18} {site.name}")

    return _run_with_pool(args, "site", body)


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from backend.backup import BackupError, backup, default_file_name

    settings = _settings(args)
    out = Path(args.out) if args.out else Path(default_file_name())
    try:
        with _databases(settings) as urls:
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

    settings = _settings(args)
    try:
        # The restored chains are checked with the record keyring; without it they are unverifiable.
        record_keys.configure(record_keys.load(settings))
    except record_keys.RecordKeyError as exc:
        print(f"celltrail restore: {exc}; the chains cannot be verified", file=sys.stderr)
    try:
        with _databases(settings) as urls:
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

    user = verbs.add_parser("user", help="manage users: add, passwd, list")
    user_actions = user.add_subparsers(dest="action", required=True)
    add = user_actions.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--full-name", required=True, help="printed name, shown on electronic signatures")
    add.add_argument(
        "--role",
        action="append",
        required=True,
        help="courier, pharmacist, coordinator, manufacturing, qa or admin (repeatable)",
    )
    add.add_argument("--site", action="append", required=True, help="site code (repeatable)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd = user_actions.add_parser("passwd", help="set a user's password (revokes their tokens)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    user_actions.add_parser("list", help="list users").set_defaults(password_stdin=False)
    user.set_defaults(run=cmd_user)

    apikey = verbs.add_parser(
        "apikey",
        help="manage API keys of service accounts: create, list, revoke",
        description="API keys authenticate service accounts (the firmware bridge, integrations) as "
        "'Authorization: Bearer ctk_...' without signing in. A key is shown once, when created.",
    )
    apikey_actions = apikey.add_subparsers(dest="action", required=True)
    key_create = apikey_actions.add_parser("create", help="create a key; prints it once on standard output")
    key_create.add_argument("username", help="the service account (role bridge)")
    key_create.add_argument("--name", required=True, help="what or where the key is used, e.g. the host")
    key_create.add_argument(
        "--create-account",
        action="store_true",
        help="create the service account first if it does not exist (role bridge, no usable password)",
    )
    key_create.add_argument("--full-name", default="Firmware bridge", help="with --create-account")
    key_create.add_argument("--site", default="HQ", help="with --create-account (default HQ)")
    key_list = apikey_actions.add_parser("list", help="list keys (never their secrets)")
    key_list.add_argument("--username", help="only this account's keys")
    key_revoke = apikey_actions.add_parser("revoke", help="revoke a key at once")
    key_revoke.add_argument("key_id", type=int)
    key_revoke.add_argument("--reason", default="revoked from the command line")
    apikey.set_defaults(run=cmd_apikey)

    site = verbs.add_parser("site", help="manage sites: add, list")
    site_actions = site.add_subparsers(dest="action", required=True)
    site_add = site_actions.add_parser("add", help="create a site")
    site_add.add_argument("code")
    site_add.add_argument("--name", required=True)
    site_add.add_argument(
        "--kind", required=True, choices=["hospital", "apheresis", "manufacturing", "courier_depot"]
    )
    site_add.add_argument("--time-zone", required=True, help="IANA name, e.g. Europe/Zurich")
    site_add.add_argument("--gln", help="GS1 Global Location Number (13 digits)")
    site_actions.add_parser("list", help="list sites")
    site.set_defaults(run=cmd_site)

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
