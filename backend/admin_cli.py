"""`celltrail user`, `celltrail apikey` and `celltrail site`: accounts, service keys and sites from the
command line, through the same services (and the same refusals) as the admin API."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from backend.cli_database import run_with_pool


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise SystemExit("the passwords differ; nothing was changed")
    return first


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

    return run_with_pool(args, "user", body)


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

    return run_with_pool(args, "apikey", body)


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

    return run_with_pool(args, "site", body)


def configure_user_parser(user: argparse.ArgumentParser) -> None:
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


def configure_apikey_parser(apikey: argparse.ArgumentParser) -> None:
    apikey.description = (
        "API keys authenticate service accounts (the firmware bridge, integrations) as "
        "'Authorization: Bearer ctk_...' without signing in. A key is shown once, when created."
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


def configure_site_parser(site: argparse.ArgumentParser) -> None:
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
