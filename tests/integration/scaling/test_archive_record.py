"""An archived leg's record is the record it was (issue 26, "Done when"): a full vein-to-vein case whose
first leg travelled 30 months ago, rendered as the JSON record, the PDF, the temperature summaries, the
receipt view and the readings CSV; its month archived out of the database; rendered again: the JSON
byte for byte, the PDF's text, and every summary the same. The custody record is not touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pypdfium2 as pdfium
import pytest

from backend.db.pool import create_pool
from backend.db.repo import exports
from backend.reports.pdf import render_pdf
from backend.reports.record import load_record
from backend.services import archive, archive_files, record_keys
from tests.integration.helpers import assert_problem
from tests.integration.journey import World
from tests.integration.reports.reports_support import (
    Case,
    module_client,
    module_database,
    world_and_case,
)

__all__ = ["module_client", "module_database"]

AGE = "30 months"
# The record states when it was generated; the same moment is put into both renderings.
GENERATED = datetime(2030, 1, 1, tzinfo=UTC)
CUSTODY_TABLES = ("custody_events", "signatures", "cases", "units", "shipments", "shipment_units", "alerts")


def _pdf_text(content: bytes) -> str:
    document = pdfium.PdfDocument(content)
    return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


async def _age_first_leg(conn: asyncpg.Connection[Any], case: Case) -> None:
    """The first leg moved 30 months back, its readings with it, with a few more readings of values a
    real holds only approximately. As the superuser with triggers off (replica): readings are
    append-only and a moved window would be re-evaluated, neither of which is the point here."""
    first = await conn.fetchval("SELECT min(ts) FROM readings WHERE logger_id = 'LGR-T1'")
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            """INSERT INTO readings (logger_id, ts, temp_c, battery_pct, lid_open, shipment_id)
               SELECT 'LGR-T1', $1::timestamptz + interval '150 seconds' + i * interval '5 minutes',
                      4.0 + i * 0.1234567, CASE WHEN i % 2 = 0 THEN NULL ELSE 70 + i END,
                      CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END, $2
               FROM generate_series(0, 8) AS i""",
            first,
            case.ship1,
        )
        await conn.execute(
            f"SELECT ensure_readings_partitions(2, now() - interval '{AGE}' - interval '1 month')"
        )
        await conn.execute(
            f"""UPDATE readings SET ts = ts - interval '{AGE}', received_at = received_at - interval '{AGE}',
                                    stored_at = stored_at - interval '{AGE}'
                WHERE logger_id = 'LGR-T1'"""
        )
        await conn.execute(
            f"""UPDATE shipments SET packed_at = packed_at - interval '{AGE}',
                       departed_at = departed_at - interval '{AGE}',
                       received_at = received_at - interval '{AGE}',
                       planned_departure = planned_departure - interval '{AGE}',
                       planned_arrival = planned_arrival - interval '{AGE}',
                       leg_from = leg_from - interval '{AGE}', leg_until = leg_until - interval '{AGE}'
                WHERE id = $1""",
            case.ship1,
        )


async def _renderings(world: World, conn: asyncpg.Connection[Any], case: Case) -> dict[str, Any]:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        record = await load_record(conn, case.coi, patient_visible=True, requested_by="Archive test")
    record = msgspec.structs.replace(record, generated_at=GENERATED)
    api_record = await world.ok("coord", "GET", f"/api/v1/cases/{case.coi}/record.json")
    api_record.pop("generated_at")
    pdf = await world.call("coord", "GET", f"/api/v1/cases/{case.coi}/report.pdf")
    assert pdf.status_code == 200, pdf.text
    csv = await world.call("coord", "GET", f"/api/v1/shipments/{case.ship1}/readings.csv")
    assert csv.status_code == 200, csv.text
    leg_from = await conn.fetchval("SELECT leg_from FROM shipments WHERE id = $1", case.ship1)
    window = (leg_from + timedelta(minutes=25), leg_from + timedelta(minutes=45))
    return {
        # A part of the leg, and its first readings only, as the CSV export asks for them.
        "part": await exports.readings_of_shipment(conn, case.ship1, *window, 1000),
        "first five": await exports.readings_of_shipment(conn, case.ship1, None, None, 5),
        "json": msgspec.json.encode(record),
        "pdf": _pdf_text(render_pdf(record)),
        "api record": api_record,
        # The API's PDF says when it was generated: compared without that line.
        "api pdf": [line for line in _pdf_text(pdf.content).splitlines() if "enerated" not in line],
        "case temperature": await world.ok("coord", "GET", f"/api/v1/cases/{case.coi}/temperature"),
        "leg temperature": await world.ok("coord", "GET", f"/api/v1/shipments/{case.ship1}/temperature"),
        "receipt view": await world.ok("mfg", "GET", f"/api/v1/shipments/{case.ship1}/receipt"),
        "csv": csv.text,
    }


async def _custody(conn: asyncpg.Connection[Any]) -> dict[str, str]:
    found = {}
    for table in CUSTODY_TABLES:
        found[table] = await conn.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t"
        )
    return found


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(scope="module")
async def aged(module_client: Any, module_database: str) -> tuple[World, Case]:
    world, case = await world_and_case(module_client, module_database)
    conn = await asyncpg.connect(module_database)
    try:
        await _age_first_leg(conn, case)
    finally:
        await conn.close()
    return world, case


async def test_an_archived_legs_record_pdf_and_summaries_are_what_they_were(aged, module_database, tmp_path):
    world, case = aged
    # A pool's connection: the record is read with the codecs the backend's pool sets up.
    pool = await create_pool(module_database, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await _check(world, conn, case, tmp_path)
    finally:
        await pool.close()


async def _check(world: World, conn: Any, case: Case, tmp_path: Path) -> None:
    before = await _renderings(world, conn, case)
    leg = before["api record"]["legs"][0]
    assert leg["shipment_id"] == case.ship1
    assert leg["summary"]["readings"] == 19
    assert 0 < len(before["part"]) < 19
    assert len(before["first five"]) == 5
    assert leg["summary"]["first"].startswith(str((datetime.now(UTC) - timedelta(days=910)).year))
    custody = await _custody(conn)

    done = await archive.archive_due(conn, record_keys.current(), tmp_path, 24)
    month = await conn.fetchval(
        "SELECT date_trunc('month', leg_from, 'UTC') FROM shipments WHERE id = $1", case.ship1
    )
    assert [d.rows for d in done if d.range_from == month] == [19]
    # Out of the database: the leg's readings are only in the archive now.
    assert await conn.fetchval("SELECT count(*) FROM readings WHERE logger_id = 'LGR-T1'") == 0
    assert await conn.fetchval("SELECT count(*) FROM leg_readings($1)", case.ship1) == 0

    after = await _renderings(world, conn, case)
    for name, value in before.items():
        assert after[name] == value, name
    assert after["json"] == before["json"]  # byte for byte
    # The custody record stays whole in the database, and its chain still verifies.
    assert await _custody(conn) == custody
    verdict = await world.ok("qa", "GET", f"/api/v1/cases/{case.coi}/verify")
    assert verdict["ok"] is True

    # The archive is what the record now rests on: a file altered is a report refused, not a leg
    # shown without its readings.
    [leg_file] = [d.file for d in done if d.range_from == month]
    _truncate(Path(leg_file))
    with pytest.raises(archive.ArchiveError, match="altered"):
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await load_record(conn, case.coi, patient_visible=True, requested_by="Archive test")
    # Through the API: a problem+json error, which says nothing of the file (the log does).
    for path in (f"/api/v1/cases/{case.coi}/record.json", f"/api/v1/shipments/{case.ship1}/temperature"):
        body = assert_problem(await world.call("coord", "GET", path), 500)
        assert "parquet" not in body["detail"]
    assert archive_files.MANIFEST_SUFFIX in "".join(_files(tmp_path))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])
