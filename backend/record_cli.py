"""`celltrail key`, `celltrail checkpoint` and `celltrail verify`: the record keyring, external
checkpoints on demand, and every chain checked against the keyring, the stored states and the latest
checkpoint. No command prints a key: keys are named by their ids."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from backend.settings import load_settings

# Exit statuses of `celltrail verify`: every chain verified, one is broken, one cannot be verified here.
VERIFIED, BROKEN, UNVERIFIABLE = 0, 3, 4


def configure_key_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "rotate",
        help="add a new key to the keyring (created 0600 if missing); new events use it, older events "
        "keep verifying with the keys before it",
    )
    actions.add_parser("list", help="the keyring's key ids (never the keys); the last is current")


def run_key(args: argparse.Namespace) -> int:
    from backend.services import record_keys

    settings = load_settings(os.environ)
    path = settings.record_key_path
    if args.action == "rotate":
        keyring = record_keys.add_key(path)
        assert keyring.current is not None
        print(f"{path}: the current record key is now {keyring.current.key_id}")
        print("restart the backend to use it; keep every older key in the file for verification")
        return 0
    keyring = record_keys.load(settings)
    for key_id in keyring.key_ids:
        current = "  (current)" if keyring.current and key_id == keyring.current.key_id else ""
        print(f"{key_id}{current}")
    return 0


def configure_checkpoint_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write a signed checkpoint of every case's chain head into CELLTRAIL_CHECKPOINT_DIR now (the "
        "backend also writes one every CELLTRAIL_CHECKPOINT_MINUTES), time-stamped by "
        "CELLTRAIL_TSA_URL when set."
    )


def run_checkpoint(args: argparse.Namespace) -> int:
    from backend.cli_database import database
    from backend.db.pool import create_pool
    from backend.services import checkpoints, record_keys

    settings = load_settings(os.environ)
    keyring = record_keys.load(settings)

    async def run(url: str) -> Any:
        pool: Any = await create_pool(url, min_size=1, max_size=1)
        try:
            return await checkpoints.write(pool, keyring, settings.checkpoint_path, settings.tsa_url)
        finally:
            await pool.close()

    try:
        with database(settings) as url:
            written = asyncio.run(run(url))
    except checkpoints.CheckpointError as exc:
        print(f"celltrail checkpoint: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {written.path}: {written.cases} cases, Merkle root {written.merkle_root}")
    if written.timestamp_path:
        print(f"time-stamp token: {written.timestamp_path}")
    return 0


def configure_verify_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Check custody chains with the record keyring, against the stored unit, shipment and case "
        "states, and against the latest checkpoint. Exit status 0: all verified; 3: one is broken; "
        "4: none broken but one cannot be verified here (a key is missing)."
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("coi", nargs="?", help="one case")
    target.add_argument("--all", action="store_true", help="every case, and every checkpointed case")


def run_verify(args: argparse.Namespace) -> int:
    from backend.cli_database import database
    from backend.services import record_keys, verification

    settings = load_settings(os.environ)
    keyring = record_keys.load(settings)
    with database(settings) as url:
        report = asyncio.run(
            verification.verify_all(url, keyring, settings.checkpoint_path, None if args.all else [args.coi])
        )
    for verdict in report.verdicts:
        print(f"{verdict.coi}: {verdict.status} - {verdict.message}")
        for mismatch in verdict.state_mismatches:
            print(
                f"    {mismatch['object']} {mismatch['id']} {mismatch['field']}: stored "
                f"{mismatch['stored']!r}, the record says {mismatch['recorded']!r}"
            )
        if verdict.checkpoint and verdict.checkpoint.get("contradiction"):
            print(f"    checkpoint {verdict.checkpoint['file']}: {verdict.checkpoint['contradiction']}")
    for coi in report.vanished:
        print(f"{coi}: broken - in checkpoint {report.checkpoint_file} but no longer in the database")
    for coi in report.unknown:
        print(f"{coi}: no such case in the database")
    if report.checkpoint_file is None:
        print("no checkpoint yet: chains were not compared with one")
    else:
        print(f"latest checkpoint: {report.checkpoint_file} ({report.checkpoint_authenticity})")
    print(f"{report.verified} of {len(report.verdicts)} chains verified")
    if report.broken:
        return BROKEN
    return UNVERIFIABLE if report.unverifiable else VERIFIED
