"""The vein-to-vein record of a full case: as JSON, as a PDF whose text and rendering are checked, from
the `celltrail report` command, and who may have it; and the CSV exports of its readings and alerts."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from PIL import Image
from reports_support import Case, module_client, module_database, sql, world_and_case

from tests.integration.helpers import assert_problem
from tests.integration.journey import World

__all__ = ["module_client", "module_database"]


@pytest.fixture(scope="module")
async def journey(module_client: Any, module_database: str) -> tuple[World, Case]:
    return await world_and_case(module_client, module_database)


def pdf_text(content: bytes) -> str:
    document = pdfium.PdfDocument(content)
    return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


async def test_record_json_holds_the_whole_journey(journey):
    world, case = journey
    record = await world.ok("coord", "GET", f"/api/v1/cases/{case.coi}/record.json")
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{case.coi}/timeline")
    verdict = await world.ok("qa", "GET", f"/api/v1/cases/{case.coi}/verify")

    assert [e["seq"] for e in record["events"]] == [e["seq"] for e in timeline["events"]]
    assert [e["action"] for e in record["events"]] == [e["action"] for e in timeline["events"]]
    assert record["chain"]["ok"] is True
    assert record["chain"]["head_hash"] == verdict["head_hash"] == timeline["events"][-1]["hash"]
    signed = {(s["printed_name"], s["meaning"]) for e in record["events"] for s in e["signatures"]}
    assert {("Pharm", "verified at bedside"), ("Pharm2", "administered"), ("Qa", "released")} <= signed
    assert ("Mfg", "received and verified") in signed

    # Corrected after first entry: the label event names its correction, the correction its reason.
    assert record["corrected"] is True
    label = next(e for e in record["events"] if e["id"] == case.label_event)
    assert len(label["corrected_by"]) == 1
    assert record["corrections"][0]["reason"] == "label printed with the wrong expiry"

    refused = next(e for e in record["events"] if e["id"] == case.refused_event)
    assert (refused["outcome"], refused["refusal"]) == ("refused", "wrong_site")

    leg1, leg2 = record["legs"]
    assert (leg1["shipment_id"], leg1["low_c"], leg1["high_c"]) == (case.ship1, 2.0, 8.0)
    assert leg1["summary"]["readings"] == 10
    assert leg1["summary"]["max_c"] == pytest.approx(12.0)
    [excursion] = leg1["excursions"]
    assert (excursion["side"], excursion["peak_c"], excursion["minutes"]) == ("above", 12.0, 15.0)
    assert leg1["alarm"] is True
    assert leg2["excursions"] == []
    assert leg2["alarm"] is False
    assert leg2["high_c"] == -150.0

    handled = next(a for a in record["alerts"] if a["kind"] == "temperature_high")
    assert (handled["acknowledged_by"], handled["ack_comment"]) == ("Coord", "looking")
    assert (handled["closed_by"], handled["close_reason"]) == ("Qa", "within stability data")
    assert any(a["kind"] == "refused_step" for a in record["alerts"])

    # The coordinator works at the treatment site and sees the patient fields.
    assert record["patient"] == {"patient_ref": "MRN-0042", "birth_year": None}
    assert record["patient_withheld"] is False


async def test_patient_fields_stay_with_the_treatment_site(journey):
    world, case = journey
    record = await world.ok("mfg", "GET", f"/api/v1/cases/{case.coi}/record.json")
    assert record["patient"] is None
    assert record["patient_withheld"] is True
    response = await world.call("mfg", "GET", f"/api/v1/cases/{case.coi}/report.pdf")
    assert response.status_code == 200
    text = pdf_text(response.content)
    assert "MRN-0042" not in text
    assert "withheld" in text


async def test_pdf_shows_events_signatures_temperature_alerts_and_the_verdict(journey, artifacts_dir):
    world, case = journey
    response = await world.call("coord", "GET", f"/api/v1/cases/{case.coi}/report.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    assert f"{case.coi}-vein-to-vein.pdf" in response.headers["content-disposition"]
    artifacts_dir.joinpath("vein-to-vein.pdf").write_bytes(response.content)
    text = pdf_text(response.content)
    flat = " ".join(text.split())
    record = await world.ok("coord", "GET", f"/api/v1/cases/{case.coi}/record.json")

    assert case.coi in flat
    assert "MRN-0042" in flat
    for event in record["events"]:
        assert event["action"].replace("_", " ") in flat, event["action"]
        assert event["detail"].split(";")[0][:40] in flat, event["detail"]
    for name, meaning in (
        ("Pharm", "verified at bedside"),
        ("Pharm2", "administered"),
        ("Qa", "released"),
        ("Mfg", "received and verified"),
    ):
        assert f"Signed by {name} " in flat
        assert f"meaning: {meaning}" in flat
    assert "REFUSED (wrong_site)" in flat
    assert "Chain verification: VERIFIED" in flat
    assert record["chain"]["head_hash"] in text.replace("\r", "").replace("\n", "")
    assert "Corrected after first entry: YES" in flat
    assert "Corrected later by event" in flat
    assert "label printed with the wrong expiry" in flat
    assert f"Leg {case.ship1} - ALARM" in flat
    assert f"Leg {case.ship2}" in flat
    assert f"Leg {case.ship2} - ALARM" not in flat
    assert "Excursion above 8.0 °C" in flat
    assert "Acknowledged by Coord" in flat
    assert '"looking"' in flat
    assert "Closed by Qa" in flat
    assert '"within stability data"' in flat

    page = pdfium.PdfDocument(response.content)[0].render(scale=1).to_pil()
    png = io.BytesIO()
    page.save(png, format="PNG")
    image = Image.open(io.BytesIO(png.getvalue())).convert("L")
    assert image.size[0] > 500
    assert image.size[1] > 700
    dark = sum(image.histogram()[:128])
    assert dark > 2000  # printed text, not a blank page
    artifacts_dir.joinpath("vein-to-vein-page1.png").write_bytes(png.getvalue())


async def test_a_broken_chain_is_printed_as_failed(journey, module_database):
    world, _case = journey
    coi = await world.new_case("Second case")
    await sql(module_database, "ALTER TABLE custody_events DISABLE TRIGGER custody_events_append_only")
    try:
        await sql(module_database, "UPDATE custody_events SET detail = 'edited' WHERE coi = $1", coi)
    finally:
        await sql(module_database, "ALTER TABLE custody_events ENABLE TRIGGER custody_events_append_only")
    response = await world.call("coord", "GET", f"/api/v1/cases/{coi}/report.pdf")
    flat = " ".join(pdf_text(response.content).split())
    assert "Chain verification: FAILED" in flat
    assert "Chain verification: VERIFIED" not in flat
    assert "Corrected after first entry: NO" in flat


async def test_record_routes_refuse_wrong_roles_and_other_sites(journey):
    world, case = journey
    for path in (f"/api/v1/cases/{case.coi}/report.pdf", f"/api/v1/cases/{case.coi}/record.json"):
        assert_problem(await world.call("courier1", "GET", path), 403, "roles")
        assert (await world.call("qa", "GET", path)).status_code == 200
    # A case that never left the treatment site is not known at the manufacturing site.
    other = await world.new_case("Other therapy")
    for path in (f"/api/v1/cases/{other}/report.pdf", f"/api/v1/cases/{other}/record.json"):
        assert_problem(await world.call("mfg", "GET", path), 404)
        assert (await world.call("pharm", "GET", path)).status_code == 200


def _report(*args: str, database_url: str, key_file: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CELLTRAIL_DATABASE_URL": database_url, "CELLTRAIL_RECORD_KEY_FILE": str(key_file)}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "report", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_cli_writes_pdf_and_json_and_records_nothing(
    journey, module_database, tmp_path, record_key_file
):
    _world, case = journey
    count = "SELECT (SELECT count(*) FROM custody_events) + (SELECT count(*) FROM audit_log) AS n"
    before = (await sql(module_database, count))[0]["n"]

    out = tmp_path / "record.pdf"
    done = _report(f"&/{case.coi}", "--out", str(out), database_url=module_database, key_file=record_key_file)
    assert done.returncode == 0, done.stderr
    assert "chain verified" in done.stdout
    text = pdf_text(out.read_bytes())
    assert case.coi in text
    assert "MRN-0042" not in text  # patient fields only when asked for

    as_json = tmp_path / "record.json"
    done = _report(
        case.coi,
        "--out",
        str(as_json),
        "--include-patient-fields",
        database_url=module_database,
        key_file=record_key_file,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(as_json.read_text())
    assert record["coi"] == case.coi
    assert record["patient"]["patient_ref"] == "MRN-0042"
    assert record["chain"]["ok"] is True

    missing = _report(
        "CHA99992699ZZZZ",
        "--format",
        "json",
        "--out",
        "-",
        database_url=module_database,
        key_file=record_key_file,
    )
    assert missing.returncode == 1
    assert "no case" in missing.stderr
    assert (await sql(module_database, count))[0]["n"] == before


# ---------------------------------------------------------------------------------------------- CSV exports


def csv_rows(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_shipment_readings_csv(journey):
    world, case = journey
    path = f"/api/v1/shipments/{case.ship1}/readings.csv"
    response = await world.call("coord", "GET", path)
    assert response.text.splitlines()[0] == "ts,logger_id,shipment_id,temp_c,battery_pct,lid_open,received_at"
    rows = csv_rows(response)
    assert [r["temp_c"] for r in rows] == [
        "5.0",
        "5.5",
        "6.0",
        "11.5",
        "12.0",
        "11.0",
        "6.5",
        "5.5",
        "5.0",
        "4.5",
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["ts"]) for r in rows)
    assert {r["logger_id"] for r in rows} == {"LGR-T1"}
    assert rows[0]["battery_pct"] == "90"
    assert rows[0]["lid_open"] == ""

    window = await world.call(
        "courier1", "GET", path, params={"since": rows[3]["ts"], "until": rows[6]["ts"]}
    )
    assert [r["temp_c"] for r in csv_rows(window)] == ["11.5", "12.0", "11.0"]

    assert_problem(await world.call("pharm", "GET", path), 404)
    assert_problem(
        await world.call("coord", "GET", path, params={"since": "2026-01-01T00:00:00"}), 422, "offset"
    )
    backwards = {"since": rows[6]["ts"], "until": rows[3]["ts"]}
    assert_problem(await world.call("coord", "GET", path, params=backwards), 422, "before")


async def test_logger_readings_csv_follows_the_registry_rules(journey):
    world, case = journey
    rows = csv_rows(await world.call("coord", "GET", "/api/v1/exports/loggers/LGR-T1/readings.csv"))
    assert len(rows) == 10
    assert {r["shipment_id"] for r in rows} == {case.ship1}
    cryo = csv_rows(await world.call("coord", "GET", "/api/v1/exports/loggers/LGR-T2/readings.csv"))
    assert [r["temp_c"] for r in cryo] == ["-182.0", "-181.5", "-180.75", "-181.0"]
    # A logger no site owns is the administrators'.
    assert_problem(await world.call("coord", "GET", "/api/v1/exports/loggers/LGR-T3/readings.csv"), 404)
    assert csv_rows(await world.call("admin", "GET", "/api/v1/exports/loggers/LGR-T3/readings.csv")) == []
    assert_problem(await world.call("admin", "GET", "/api/v1/exports/loggers/LGR-NOPE/readings.csv"), 404)
    assert_problem(
        await world.call("mfg", "GET", "/api/v1/exports/loggers/LGR-T2/readings.csv"), 403, "roles"
    )


async def test_alerts_csv_by_site_and_time(journey):
    world, case = journey
    record = await world.ok("coord", "GET", f"/api/v1/cases/{case.coi}/record.json")
    refused_alert = next(a for a in record["alerts"] if a["kind"] == "refused_step")
    await world.ok(
        "coord",
        "POST",
        f"/api/v1/alerts/{refused_alert['id']}/acknowledge",
        201,
        json={"comment": '=HYPERLINK("http://x")'},
    )
    rows = csv_rows(await world.call("coord", "GET", "/api/v1/exports/alerts.csv", params={"site": "CTA"}))
    by_kind = {r["kind"]: r for r in rows if r["coi"] == case.coi}
    temperature = by_kind["temperature_high"]
    assert (temperature["acknowledged_by"], temperature["ack_comment"]) == ("Coord", "looking")
    assert (temperature["closed_by"], temperature["close_reason"]) == ("Qa", "within stability data")
    assert temperature["peak_value"] == "12.0"
    assert temperature["sites"] == "USZ-APH CTA"
    assert temperature["started_at"].endswith("Z")
    # Text a spreadsheet would run as a formula is quoted.
    assert by_kind["refused_step"]["ack_comment"] == '\'=HYPERLINK("http://x")'

    later = {"since": "2100-01-01T00:00:00Z"}
    assert csv_rows(await world.call("coord", "GET", "/api/v1/exports/alerts.csv", params=later)) == []
    # The hospital pharmacy sees no alert of the other sites' legs, and no other site's list at all.
    assert csv_rows(await world.call("pharm", "GET", "/api/v1/exports/alerts.csv")) == []
    assert_problem(
        await world.call("pharm", "GET", "/api/v1/exports/alerts.csv", params={"site": "CTA"}), 404
    )
    assert_problem(await world.call("courier1", "GET", "/api/v1/exports/alerts.csv"), 403, "roles")
