"""Biobank samples (issue 25): research samples taken along a case are units of kind SMP with their own
label, custody steps and storage position, linked to the case and to the consent they were taken under.
A sample is never dispensed, thawed or infused; another site's people can neither see nor move it."""

from __future__ import annotations

from typing import Any

import asyncpg
import pypdfium2 as pdfium
import pytest

from tests.integration.helpers import assert_problem, make_site, make_user
from tests.integration.journey import PASSWORD, World, build_world, starting_material_at_manufacturing

SAMPLE = {"description": "patient EDTA blood", "site": "USZ-APH", "consent_ref": "BB-CONSENT-2026-0042"}
POSITION = {"site": "USZ-APH", "freezer": "F-80-2", "rack": "3", "box": "12", "position": "A4"}


def pdf_text(content: bytes) -> str:
    document = pdfium.PdfDocument(content)
    return " ".join(
        " ".join(document[i].get_textpage().get_text_range() for i in range(len(document))).split()
    )


async def _sample(world: World, coi: str, who: str = "nurse", **extra: Any) -> dict[str, Any]:
    body = {**SAMPLE, **extra}
    unit: dict[str, Any] = await world.ok(who, "POST", f"/api/v1/cases/{coi}/samples", 201, json=body)
    return unit


async def _stored_sample(world: World) -> tuple[str, str]:
    coi = await world.new_case()
    sample = (await _sample(world, coi))["id"]
    await world.scan_ok("nurse", "label", "USZ-APH", sample)
    stored = await world.ok("nurse", "POST", f"/api/v1/units/{sample}/storage", 201, json=POSITION)
    assert stored["status"] == "stored"
    return coi, sample


async def test_a_sample_is_registered_labelled_stored_moved_and_disposed(client: Any) -> None:
    world = await build_world(client)
    coi = await world.new_case()
    unit = await _sample(world, coi)
    assert unit["id"] == f"{coi}-SMP-01"
    assert (unit["kind"], unit["consent_ref"], unit["status"]) == ("SMP", SAMPLE["consent_ref"], "created")
    sample = unit["id"]
    # Its own label: small, research material, its unit id and its case's COI.
    label = await world.call("nurse", "GET", f"/api/v1/labels/bag/{sample}.pdf")
    assert label.status_code == 200, label.text
    text = pdf_text(label.content)
    for needle in ("RESEARCH SAMPLE - NOT FOR HUMAN USE", sample, "patient EDTA blood"):
        assert needle in text, (needle, text)
    png = await world.call("nurse", "GET", f"/api/v1/labels/bag/{sample}.png")
    assert png.status_code == 200, png.text
    # Not stored before it is labelled.
    early = await world.call("nurse", "POST", f"/api/v1/units/{sample}/storage", json=POSITION)
    assert_problem(early, 409, "labelled")
    await world.scan_ok("nurse", "label", "USZ-APH", sample)
    stored = await world.ok("nurse", "POST", f"/api/v1/units/{sample}/storage", 201, json=POSITION)
    assert stored["storage_location"] == "freezer F-80-2 / rack 3 / box 12 / position A4"
    moved = await world.ok(
        "nurse", "POST", f"/api/v1/units/{sample}/storage", 201, json={**POSITION, "freezer": "F-80-5"}
    )
    assert moved["storage_location"].startswith("freezer F-80-5 /")
    # The biobank keeps it beyond the treatment: the case cancelled, the sample is still moved.
    await world.ok(
        "coord",
        "POST",
        f"/api/v1/cases/{coi}/cancel",
        201,
        json={"reason": "patient withdrew", "password": PASSWORD},
    )
    await world.ok("nurse", "POST", f"/api/v1/units/{sample}/storage", 201, json={**POSITION, "box": "13"})
    refused = await world.scan("nurse", "dispense", "USZ-APH", sample)
    assert refused.status_code == 409, refused.text
    await world.scan_ok("nurse", "dispose", "USZ-APH", sample, reason="used up by the biobank's assay")
    timeline = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/timeline")
    steps = [e for e in timeline["events"] if sample in e["unit_ids"]]
    actions = [e["action"] for e in steps if e["outcome"] == "accepted"]
    assert actions == ["unit_registered", "label", "store", "store", "store", "dispose"]
    assert steps[0]["data"]["consent_ref"] == SAMPLE["consent_ref"]
    assert steps[2]["data"]["position"] == {k: v for k, v in POSITION.items() if k != "site"}
    assert "moved sample" in steps[3]["detail"]
    # The stored states agree with the chain's replay.
    verdict = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/verify")
    assert verdict["ok"] is True, verdict
    # A disposed sample is not stored again.
    again = await world.call("nurse", "POST", f"/api/v1/units/{sample}/storage", json=POSITION)
    assert_problem(again, 409)


async def test_manufacturing_registers_a_retained_sample(client: Any) -> None:
    world = await build_world(client)
    coi, _aph, _ship = await starting_material_at_manufacturing(world)
    unit = await _sample(world, coi, "mfg", description="retained product sample", site="CTA")
    await world.scan_ok("mfg", "label", "CTA", unit["id"])
    await world.ok(
        "mfg", "POST", f"/api/v1/units/{unit['id']}/storage", 201, json={**POSITION, "site": "CTA"}
    )
    # Its site is manufacturing's: the hospital's nurse, bound elsewhere, does not store it.
    refused = await world.call("nurse", "POST", f"/api/v1/units/{unit['id']}/storage", json=POSITION)
    assert_problem(refused, 409, "CTA")


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in SAMPLE.items() if k != "consent_ref"},
        {**SAMPLE, "consent_ref": ""},
        {**SAMPLE, "consent_ref": "   "},
        {**SAMPLE, "consent_ref": "C" * 101},
        {**SAMPLE, "consent_ref": "BB\n1"},
        {**SAMPLE, "consent_ref": "BB-1\n"},
        {**SAMPLE, "description": "d" * 41},
        {**SAMPLE, "kind": "PRC"},
    ],
)
async def test_a_sample_without_a_valid_consent_is_refused(
    client: Any, database_url: str, body: dict[str, Any]
) -> None:
    world = await build_world(client)
    coi = await world.new_case()
    response = await world.call("nurse", "POST", f"/api/v1/cases/{coi}/samples", json=body)
    assert_problem(response, 400)
    # Nor through the bag registration, nor straight into the table.
    response = await world.call(
        "nurse",
        "POST",
        f"/api/v1/cases/{coi}/units",
        json={"kind": "SMP", "product": "Blood", "site": "USZ-APH"},
    )
    assert_problem(response, 400)
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.CheckViolationError, match="units_sample_consent"):
            await conn.execute(
                "INSERT INTO units (id, coi, kind, product, status, site) "
                "VALUES ($1 || '-SMP-09', $1, 'SMP', 'Blood', 'created', 'USZ-APH')",
                coi,
            )
        assert await conn.fetchval("SELECT count(*) FROM units WHERE coi = $1 AND kind = 'SMP'", coi) == 0
    finally:
        await conn.close()


@pytest.mark.parametrize("action", ["dispense", "thaw", "infuse"])
async def test_a_sample_never_goes_towards_a_patient(client: Any, action: str) -> None:
    world = await build_world(client)
    coi, sample = await _stored_sample(world)
    extra: dict[str, Any] = {}
    codes = [sample]
    if action == "infuse":
        codes.append(f"CT1:COI:{coi}")
        extra["signatures"] = [
            {"username": "nurse", "password": PASSWORD, "meaning": "verified at bedside"},
            {"username": "pharm", "password": PASSWORD, "meaning": "administered"},
        ]
    response = await world.scan("nurse", action, "USZ-APH", *codes, **extra)
    assert response.status_code in (409, 422), response.text
    body = response.json()
    assert "biobank sample" in str(body), body
    unit = await world.ok("nurse", "GET", f"/api/v1/units/{sample}")
    assert unit["status"] == "stored"


async def test_a_sample_is_a_custody_object_of_its_case_only(client: Any) -> None:
    world = await build_world(client)
    coi, sample = await _stored_sample(world)
    root = world.headers["admin"]
    await make_site(client, root, "KSB")
    outsider = await make_user(client, root, "ksb-pharm", ["pharmacist"], ["KSB"], password=PASSWORD)
    missing = f"{coi[:-1]}{'1' if coi[-1] != '1' else '2'}-SMP-01"
    for unit_id in (sample, missing):
        seen = await client.get(f"/api/v1/units/{unit_id}", headers=outsider)
        assert_problem(seen, 404)
        moved = await client.post(
            f"/api/v1/units/{unit_id}/storage", headers=outsider, json={**POSITION, "site": "KSB"}
        )
        assert_problem(moved, 404)
        registered = await client.post(
            f"/api/v1/cases/{unit_id[:-7]}/samples", headers=outsider, json={**SAMPLE, "site": "KSB"}
        )
        assert_problem(registered, 404)
        label = await client.get(f"/api/v1/labels/bag/{unit_id}.pdf", headers=outsider)
        assert_problem(label, 404)
    # A courier or QA stores no sample; a bag is not stored through the sample route.
    for who in ("courier1", "qa"):
        refused = await world.call(who, "POST", f"/api/v1/units/{sample}/storage", json=POSITION)
        assert_problem(refused, 403)
    aph = await world.unit("nurse", coi, "APH", "USZ-APH")
    not_sample = await world.call("nurse", "POST", f"/api/v1/units/{aph}/storage", json=POSITION)
    assert_problem(not_sample, 409, "not a biobank sample")
    unit = await world.ok("nurse", "GET", f"/api/v1/units/{sample}")
    assert unit["storage_location"] == "freezer F-80-2 / rack 3 / box 12 / position A4"


@pytest.mark.parametrize("field", ["freezer", "rack", "box", "position"])
async def test_storage_positions_are_bounded(client: Any, field: str) -> None:
    world = await build_world(client)
    _coi, sample = await _stored_sample(world)
    for value in ("", "x" * 21, "A4\n", "../1"):
        response = await world.call(
            "nurse", "POST", f"/api/v1/units/{sample}/storage", json={**POSITION, field: value}
        )
        assert_problem(response, 400)
