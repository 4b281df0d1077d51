"""`celltrail report COI`: write a case's vein-to-vein record as PDF or JSON from the database
(CELLTRAIL_DATABASE_URL, or the embedded one). It reads in a read-only transaction and records nothing.

Patient fields are left out unless asked for with --include-patient-fields: a printed record travels."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

import msgspec

from backend.cli_database import database
from backend.domain.errors import DomainError
from backend.private_files import write_private
from backend.reports.record import CaseRecord, load_record
from backend.services.cases import parse_coi_value
from backend.settings import load_settings


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("coi", help="the case's COI (value, barcode content &/... or eye-readable form)")
    parser.add_argument(
        "--out", help="file to write ('-' for standard output); default <COI>-record.<format>"
    )
    parser.add_argument(
        "--format", choices=["pdf", "json"], help="pdf or json (default: from --out's suffix, else pdf)"
    )
    parser.add_argument(
        "--include-patient-fields", action="store_true", help="print the patient reference and birth year"
    )


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    return "json" if args.out and str(args.out).lower().endswith(".json") else "pdf"


async def _load(url: str, coi: str, include_patient: bool) -> CaseRecord:
    from backend.db.pool import create_pool

    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            return await load_record(
                conn,
                coi,
                patient_visible=include_patient,
                requested_by=f"celltrail report ({getpass.getuser()})",
            )
    finally:
        await pool.close()


def run(args: argparse.Namespace) -> int:
    from backend.services import record_keys

    kind = _format(args)
    settings = load_settings(os.environ)
    try:
        record_keys.configure(record_keys.load(settings), settings.checkpoint_path)
    except record_keys.RecordKeyError as exc:
        # The record is still printed, saying its chain is unverifiable here.
        print(f"celltrail report: {exc}", file=sys.stderr)
    try:
        coi = parse_coi_value(args.coi)
        with database(settings) as url:
            record = asyncio.run(_load(url, coi, args.include_patient_fields))
    except DomainError as exc:
        print(f"celltrail report: {exc.detail}", file=sys.stderr)
        return 1
    if kind == "pdf":
        from backend.reports.pdf import render_pdf

        content = render_pdf(record)
    else:
        content = msgspec.json.format(msgspec.json.encode(record), indent=2) + b"\n"
    out = args.out or f"{record.coi}-record.{kind}"
    if out == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    else:
        write_private(Path(out), content)  # a case's record: for whoever exported it
        verdict = "verified" if record.chain.ok else "FAILED verification"
        print(
            f"wrote {out}: {len(record.events)} events, chain {verdict}, final hash {record.chain.head_hash}"
        )
    return 0
