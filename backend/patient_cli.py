"""`celltrail patient-key`: the patient keyring (rotate, list) and re-encryption of every stored patient
identity under the newest key. No command prints a key or an identity: keys are named by their ids."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from backend.settings import load_settings

# Exit status of `reencrypt` when some rows could not be opened (they are left as they were, and named).
UNREADABLE = 3
_BAR = 30


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "The patient keyring (CELLTRAIL_PATIENT_KEY_FILE, else <data dir>/patient.key): AES-GCM keys that "
        "encrypt patients' names, dates of birth and hospital numbers. The last key encrypts; older keys "
        "still decrypt until `reencrypt` has moved every row to the newest one."
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "rotate",
        help="add a new key (created 0600 if missing); restart the backend, then run reencrypt",
    )
    actions.add_parser("list", help="the keyring's key ids (never the keys); the last is current")
    actions.add_parser(
        "reencrypt",
        help="re-encrypt every stored patient identity under the newest key, with a progress bar",
    )


def _progress(done: int, total: int) -> None:
    filled = _BAR if total == 0 else _BAR * done // total
    sys.stderr.write(f"\rre-encrypting [{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total}")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from backend.services import patient_keys

    settings = load_settings(os.environ)
    path = settings.patient_key_path
    if args.action == "rotate":
        keyring = patient_keys.add_key(path)
        assert keyring.current is not None
        print(f"{path}: the current patient key is now {keyring.current.key_id}")
        print("restart the backend to use it, then run `celltrail patient-key reencrypt`")
        return 0
    keyring = patient_keys.load(settings)
    if args.action == "list":
        for key_id in keyring.key_ids:
            current = "  (current)" if keyring.current and key_id == keyring.current.key_id else ""
            print(f"{key_id}{current}")
        return 0
    return _reencrypt(settings, keyring)


def _reencrypt(settings: Any, keyring: Any) -> int:
    from backend.cli_database import database
    from backend.db.pool import create_pool
    from backend.services import patient_identity

    async def body(url: str) -> patient_identity.Resealed:
        pool: Any = await create_pool(url, min_size=1, max_size=1)
        try:
            return await patient_identity.reseal_all(pool, keyring, _progress)
        finally:
            await pool.close()

    with database(settings) as url:
        result = asyncio.run(body(url))
    sys.stderr.write("\n")
    print(f"{result.resealed} patient identities re-encrypted under key {result.key_id}")
    for coi in result.unreadable:
        print(f"case {coi}: its identity does not open under the keyring; left as it was", file=sys.stderr)
    return UNREADABLE if result.unreadable else 0
