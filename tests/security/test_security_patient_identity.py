"""Patient identity appears only where it is allowed (issue 25): a full vein-to-vein journey runs with the
patient's name, date of birth and hospital number recorded and printed on the wristband, then every
output is scanned for them:

- every GET route (API and pages) as every person of the non-treating sites (manufacturing, QA, a
  courier, a coordinator and a pharmacist of the manufacturing site), as the treating site's own people
  and as the administrator: only the identity read itself and the wristband label, for the treating
  site's pharmacists and coordinators, may carry it;
- the EPCIS export, the case record (JSON and PDF, the PDF's text extracted), the CSV exports;
- the server's log records captured during the test;
- the outbox (what live streams send) and every other table of the database;
- the identity table itself, which holds ciphertext only.

The positive controls (the identity read and the band do carry it) show the scan would see a leak."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

import asyncpg
import pypdfium2 as pdfium

from backend.domain.access import Role
from tests.integration.helpers import make_user
from tests.integration.journey import PASSWORD, World, bag_at_bedside, build_world
from tests.security.test_security_access_matrix import route_table

NAME = "Quillon Fairweather-Zbikowski"
DOB = "1959-08-23"
HOSPITAL_NUMBER = "USZ-HN-4417093"
# Every form a leak could take: whole and in parts, as text and as the hex of a bytea column.
NEEDLES = [NAME, "Quillon", "Zbikowski", DOB, "23.08.1959", "19590823", HOSPITAL_NUMBER]
HEX_NEEDLES = [n.encode().hex() for n in NEEDLES]
IDENTITY_TABLE = "patient_identities"

# Where the identity may appear: the read (with a reason) and the wristband, for these people only.
TREATING = {"coord", "pharm", "nurse"}
SKIPPED = {"/api/v1/stream"}  # never ends by itself; it sends the outbox's rows, scanned below


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [n for n in [*NEEDLES, *HEX_NEEDLES] if n.lower() in lowered]


def pdf_text(content: bytes) -> str:
    document = pdfium.PdfDocument(content)
    return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


def readable(response: Any) -> str:
    """Everything a reader of the answer could see: the text, a PDF's extracted text, headers."""
    parts = [json.dumps(dict(response.headers))]
    if response.content.startswith(b"%PDF"):
        parts.append(pdf_text(response.content))
    parts.append(response.content.decode("utf-8", errors="replace"))
    return "\n".join(parts)


async def journey_with_identity(world: World) -> tuple[str, str, str]:
    """The whole journey for a case whose identity is recorded before its first step; (coi, bag, leg)."""
    plain_new_case = world.new_case

    async def new_case(therapy: str = "CAR-T (autologous)") -> str:
        coi = await plain_new_case(therapy)
        await world.ok(
            "coord",
            "PUT",
            f"/api/v1/cases/{coi}/patient",
            json={"name": NAME, "date_of_birth": DOB, "hospital_number": HOSPITAL_NUMBER},
        )
        return coi

    world.new_case = new_case  # type: ignore[method-assign]
    await world.ok(
        "coord",
        "PUT",
        "/api/v1/sites/USZ/wristband-policy",
        json={"fields": ["name", "dob", "hospital-number"]},
    )
    coi, prc = await bag_at_bedside(world)
    # The treating site prints the band and checks it against the bag at the bedside.
    band = await world.call("pharm", "POST", f"/api/v1/labels/wristband/{coi}.zpl")
    assert band.status_code == 200, band.text
    verdict = await world.ok(
        "pharm",
        "POST",
        "/api/v1/bedside/verifications",
        200,
        json={"idempotency_key": str(uuid.uuid4()), "site": "USZ", "wristband": f"&/{coi}", "bag": prc},
    )
    assert verdict["verdict"] == "MATCH", verdict
    await world.scan_ok(
        "pharm",
        "infuse",
        "USZ",
        f"&/{coi}",
        prc,
        signatures=[
            {"username": "pharm", "password": PASSWORD, "meaning": "verified at bedside"},
            {"username": "pharm2", "password": PASSWORD, "meaning": "administered"},
        ],
    )
    leg = (await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline"))["shipments"][-1]["id"]
    return coi, prc, str(leg)


def urls(path: str, ids: dict[str, str]) -> list[str]:
    """The route's URL(s) for this journey's records; the label route once per label kind."""
    if path == "/api/v1/labels/{kind:str}/{filename:str}":
        return [
            f"/api/v1/labels/wristband/{ids['coi']}.zpl",
            f"/api/v1/labels/bag/{ids['unit_id']}.zpl",
            f"/api/v1/labels/shipment/{ids['shipment_id']}.zpl",
        ]
    return [re.sub(r"{(\w+)(?::\w+)?}", lambda m: ids[m.group(1)], path)]


async def test_patient_identity_appears_only_where_allowed(app, client, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    world = await build_world(client)
    coi, prc, leg = await journey_with_identity(world)
    root = world.headers["admin"]
    # The non-treating sites' people; every role the manufacturing site and a courier depot have.
    outsiders = {
        "mfg": world.headers["mfg"],
        "qa": world.headers["qa"],
        "cta-coord": await make_user(client, root, "cta-coord", [Role.COORDINATOR.value], ["CTA", "USZ-APH"]),
        "cta-pharm": await make_user(client, root, "cta-pharm", [Role.PHARMACIST.value], ["CTA"]),
        "crx-courier": await make_user(client, root, "crx-courier", [Role.COURIER.value], ["CRX", "CTA"]),
        "courier1": world.headers["courier1"],
    }
    people = outsiders | {name: world.headers[name] for name in (*TREATING, "admin")}
    ids = {
        "coi": coi,
        "unit_id": prc,
        "shipment_id": leg,
        "site_code": "USZ",
        "site": "USZ",
        "username": "pharm",
        "logger_id": "LGR-NONE",
        "capture_id": "0" * 32,
        "code": "cryo",
        "version": "1",
        "subscription_id": "1",
        "file_path": "app.js",
    }
    params = {"reason": "care-coordination", "coi": coi, "shipment_id": leg}
    allowed_hits = 0
    scanned = 0
    for route in route_table(app):
        if route.method != "GET" or route.path in SKIPPED or route.public:
            continue
        for url in urls(route.path, ids):
            for who, headers in people.items():
                response = await client.get(url, headers=headers, params=params, follow_redirects=False)
                scanned += 1
                found = leaks(readable(response))
                if who in TREATING and url.startswith("/api/v1/labels/wristband/"):
                    continue  # the band's identity is the policy's: checked below
                if route.path == "/api/v1/cases/{coi:str}/patient" and who in TREATING:
                    assert response.status_code == 200, (url, who, response.text)
                    assert NAME in response.text  # the positive control: the scan sees identity
                    allowed_hits += 1
                    continue
                assert found == [], (url, who, response.status_code, found)
    assert scanned > 400
    assert allowed_hits == len(TREATING)
    # The wristband carries it for the treating site (positive control), for no one else.
    band = await world.call("pharm", "GET", f"/api/v1/labels/wristband/{coi}.zpl")
    assert NAME in band.text
    assert "HOSP NO " + HOSPITAL_NUMBER in band.text
    for who, headers in outsiders.items():
        other = await client.get(f"/api/v1/labels/wristband/{coi}.zpl", headers=headers)
        assert other.status_code in (403, 404), (who, other.text)

    # The EPCIS export, the record and the exports for the treating site's own people too.
    for path in (
        f"/api/v1/cases/{coi}/epcis",
        f"/api/v1/shipments/{leg}/epcis",
        "/api/v1/epcis/events",
        f"/api/v1/cases/{coi}/record.json",
        f"/api/v1/cases/{coi}/report.pdf",
        "/api/v1/exports/alerts.csv",
        f"/api/v1/shipments/{leg}/readings.csv",
    ):
        for who in ("coord", "pharm", "qa", "admin"):
            response = await world.call(who, "GET", path)
            if who in ("coord", "qa", "admin"):
                assert response.status_code == 200, (path, who, response.text[:200])
            assert leaks(readable(response)) == [], (path, who)

    # The server's logs during the whole test.
    logged = [json.dumps(record.__dict__, default=str) + record.getMessage() for record in caplog.records]
    assert logged, "nothing was logged: the scan of the logs would prove nothing"
    assert [line for line in logged if leaks(line)] == []

    # Every table but the identity table, the outbox (the live streams' payloads) among them.
    conn = await asyncpg.connect(database_url)
    try:
        tables = [
            r["relname"]
            for r in await conn.fetch(
                "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
                "AND relkind IN ('r', 'p') ORDER BY relname"
            )
        ]
        assert {"outbox", "audit_log", "custody_events", "cases", IDENTITY_TABLE} <= set(tables)
        for table in tables:
            text = await conn.fetchval(f"SELECT string_agg(t::text, E'\\n') FROM \"{table}\" t")
            if table == IDENTITY_TABLE:
                continue
            assert leaks(text or "") == [], table
        outbox = await conn.fetchval("SELECT count(*) FROM outbox WHERE coi = $1", coi)
        assert outbox > 10  # the journey's live events were there to scan
        reads = await conn.fetch(
            "SELECT actor_name, reason FROM audit_log "
            "WHERE action = 'patient_identity_read' AND entity_id = $1",
            coi,
        )
        assert {(r["actor_name"], r["reason"]) for r in reads} >= {
            ("pharm", "label-printing"),
            ("pharm", "care-coordination"),
        }
        # The identity table: ciphertext only, neither as text nor in its bytes.
        sealed = await conn.fetch(f"SELECT t::text AS row, ciphertext FROM {IDENTITY_TABLE} t")
    finally:
        await conn.close()
    assert len(sealed) == 1
    assert leaks(sealed[0]["row"]) == []
    for needle in NEEDLES:
        assert needle.encode() not in sealed[0]["ciphertext"]
