"""Patient identity kept apart (issue 25): recorded by the treating site's coordinator, encrypted at rest
under a key file the database never holds, read only by the treating site's pharmacists and coordinators
with a reason that goes into the audit trail, bound to its case, and re-encrypted under a rotated key."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from backend.services import patient_keys
from backend.settings import Settings, load_settings
from tests.conftest import as_app_role
from tests.integration.helpers import assert_problem, make_site, make_user
from tests.integration.journey import World, build_world

NAME = "Ottilie Wunderlich-Quast"
IDENTITY = {"name": NAME, "date_of_birth": "1968-04-17", "hospital_number": "USZ-7781234"}
OTHER = {"name": "Bartholomew Xenakis", "date_of_birth": "1990-11-02", "hospital_number": "USZ-0000991"}


@pytest.fixture
def patient_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "patient.key"
    patient_keys.add_key(path)
    return path


@pytest.fixture
def settings(settings: Settings, patient_key_file: Path) -> Settings:
    """The conftest's settings with a patient keyring of this test's own."""
    return msgspec.structs.replace(settings, patient_key_file=str(patient_key_file))


async def _rows(database_url: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _case_with_identity(world: World, identity: dict[str, str] = IDENTITY) -> str:
    coi = await world.new_case()
    stored = await world.ok("coord", "PUT", f"/api/v1/cases/{coi}/patient", json=identity)
    assert stored["fields"] == ["name", "dob", "hospital-number"], stored
    assert NAME not in str(stored)
    assert identity["hospital_number"] not in str(stored)
    return coi


async def test_the_treating_site_records_and_reads_with_a_logged_reason(client, database_url):
    world = await build_world(client)
    coi = await _case_with_identity(world)
    read = await world.ok(
        "pharm", "GET", f"/api/v1/cases/{coi}/patient", params={"reason": "bedside-verification"}
    )
    assert (read["name"], read["date_of_birth"], read["hospital_number"]) == (
        NAME,
        "1968-04-17",
        "USZ-7781234",
    )
    answer = await world.call(
        "pharm", "GET", f"/api/v1/cases/{coi}/patient", params={"reason": "care-coordination"}
    )
    assert answer.headers["cache-control"] == "no-store"
    # Who, when and why: one audit entry per read, naming the fields and never a value.
    reads = await _rows(
        database_url,
        "SELECT actor_name, at, reason, new_value::text AS v, sites FROM audit_log "
        "WHERE action = 'patient_identity_read' AND entity_id = $1 ORDER BY id",
        coi,
    )
    assert [(r["actor_name"], r["reason"]) for r in reads] == [
        ("pharm", "bedside-verification"),
        ("pharm", "care-coordination"),
    ]
    assert all(r["sites"] == ["USZ"] and r["at"] is not None for r in reads)
    written = await _rows(database_url, "SELECT a::text AS t FROM audit_log a")
    assert not [r for r in written if NAME in r["t"] or "USZ-7781234" in r["t"] or "1968-04-17" in r["t"]]
    # At rest: ciphertext under the key file's current key, bound to the case; no plaintext.
    stored = await _rows(database_url, "SELECT key_id, nonce, ciphertext FROM patient_identities")
    assert len(stored) == 1
    assert stored[0]["key_id"] == patient_keys.current().current.key_id  # type: ignore[union-attr]
    for text in IDENTITY.values():
        assert text.encode() not in stored[0]["ciphertext"]


async def test_a_reason_from_the_list_is_required(client):
    world = await build_world(client)
    coi = await _case_with_identity(world)
    for params, status in (({}, 422), ({"reason": "curiosity"}, 400), ({"reason": "x" * 5000}, 400)):
        answer = await world.call("pharm", "GET", f"/api/v1/cases/{coi}/patient", params=params)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert NAME not in answer.text


async def test_only_the_treating_sites_pharmacists_and_coordinators_read(client, database_url):
    world = await build_world(client)
    coi = await _case_with_identity(world)
    root = world.headers["admin"]
    # A coordinator who sees the case (bound to the manufacturing site it went to) but not at USZ.
    cta_coord = await make_user(client, root, "cta-coord", ["coordinator"], ["CTA", "USZ-APH"])
    await make_site(client, root, "KSB")
    ksb_pharm = await make_user(client, root, "ksb-pharm", ["pharmacist"], ["KSB"])
    await world.unit("nurse", coi, "APH", "USZ-APH")
    params = {"reason": "care-coordination"}
    refused = await client.get(f"/api/v1/cases/{coi}/patient", headers=cta_coord, params=params)
    assert_problem(refused, 403, "treating site USZ")
    # Another hospital's pharmacist: the case does not exist for them, word for word.
    hidden = await client.get(f"/api/v1/cases/{coi}/patient", headers=ksb_pharm, params=params)
    missing = await client.get("/api/v1/cases/CHA999926ZZZZZZ/patient", headers=ksb_pharm, params=params)
    assert_problem(hidden, 404)
    assert hidden.json()["detail"].replace(coi, "X") == missing.json()["detail"].replace(
        "CHA999926ZZZZZZ", "X"
    )
    for role_holder in ("mfg", "qa", "courier1", "admin"):
        answer = await world.call(role_holder, "GET", f"/api/v1/cases/{coi}/patient", params=params)
        assert_problem(answer, 403, "needs one of the roles")
    # Only a coordinator of the treating site records it.
    for who, status in (("pharm", 403), ("mfg", 403)):
        answer = await world.call(who, "PUT", f"/api/v1/cases/{coi}/patient", json=OTHER)
        assert answer.status_code == status, answer.text
    answer = await client.put(f"/api/v1/cases/{coi}/patient", headers=cta_coord, json=OTHER)
    assert_problem(answer, 403, "treating site USZ")
    answer = await client.put(f"/api/v1/cases/{coi}/patient", headers=ksb_pharm, json=OTHER)
    assert answer.status_code == 403
    for text in (NAME, "USZ-7781234"):
        for response in (refused, hidden, answer):
            assert text not in response.text
    refusals = await _rows(
        database_url,
        "SELECT actor_name, action FROM audit_log WHERE action LIKE 'patient_identity_%' "
        "AND reason IS NOT NULL AND actor_name = 'cta-coord' ORDER BY id",
    )
    assert [r["action"] for r in refusals] == ["patient_identity_read", "patient_identity_set"]
    read = await world.ok("coord", "GET", f"/api/v1/cases/{coi}/patient", params=params)
    assert read["name"] == NAME


async def test_hostile_input_is_refused(client):
    world = await build_world(client)
    coi = await world.new_case()
    for body in (
        {"name": "A" * 201},
        {"name": "Line\nbreak"},
        {"name": ""},
        {"name": "X", "hospital_number": "H" * 41},
        {"name": "X", "date_of_birth": "2999-01-01"},
        {"name": "X", "extra": "field"},
    ):
        answer = await world.call("coord", "PUT", f"/api/v1/cases/{coi}/patient", json=body)
        assert answer.status_code in (400, 422), (body, answer.text)
    answer = await world.call(
        "pharm", "GET", f"/api/v1/cases/{coi}/patient", params={"reason": "care-coordination"}
    )
    assert answer.json()["recorded"] is False


async def test_a_ciphertext_swapped_between_cases_is_refused_not_shown(client, database_url):
    """An insider with write access to the database moves patient B's sealed identity onto case A: the
    associated data binds each ciphertext to its case, so the read is refused and B's name never shows."""
    world = await build_world(client)
    first = await _case_with_identity(world)
    second = await _case_with_identity(world, OTHER)
    conn = await asyncpg.connect(database_url)
    try:
        rows = {
            r["coi"]: r
            for r in await conn.fetch("SELECT coi, key_id, nonce, ciphertext FROM patient_identities")
        }
        for target, source in ((first, second), (second, first)):
            await conn.execute(
                "UPDATE patient_identities SET key_id = $2, nonce = $3, ciphertext = $4 WHERE coi = $1",
                target,
                rows[source]["key_id"],
                rows[source]["nonce"],
                rows[source]["ciphertext"],
            )
    finally:
        await conn.close()
    for coi in (first, second):
        answer = await world.call(
            "pharm", "GET", f"/api/v1/cases/{coi}/patient", params={"reason": "bedside-verification"}
        )
        body = assert_problem(answer, 409, "fails its integrity check")
        assert NAME not in answer.text, body
        assert "Xenakis" not in answer.text, body
    # A flipped bit in place is refused the same way.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE patient_identities SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) "
            "WHERE coi = $1",
            first,
        )
    finally:
        await conn.close()
    answer = await world.call(
        "coord", "GET", f"/api/v1/cases/{first}/patient", params={"reason": "care-coordination"}
    )
    assert_problem(answer, 409, "fails its integrity check")
    refusals = await _rows(
        database_url,
        "SELECT count(*) AS n FROM audit_log "
        "WHERE action = 'patient_identity_read' AND reason LIKE '%integrity%'",
    )
    assert refusals[0]["n"] == 3
    # Recording the identity again from the hospital's records repairs it.
    await world.ok("coord", "PUT", f"/api/v1/cases/{first}/patient", json=IDENTITY)
    read = await world.ok(
        "pharm", "GET", f"/api/v1/cases/{first}/patient", params={"reason": "identity-correction"}
    )
    assert read["name"] == NAME


async def test_rotation_old_keys_decrypt_new_key_encrypts_and_reencrypt_moves_every_row(
    client, database_url, patient_key_file, settings
):
    world = await build_world(client)
    first = await _case_with_identity(world)
    old_key = patient_keys.current().current.key_id  # type: ignore[union-attr]
    # Rotation: a new key appended; the server reads the keyring again (as at a restart).
    patient_keys.add_key(patient_key_file)
    patient_keys.configure(patient_keys.load(settings))
    new_key = patient_keys.current().current.key_id  # type: ignore[union-attr]
    assert new_key != old_key
    second = await _case_with_identity(world, OTHER)
    keys = {
        r["coi"]: r["key_id"] for r in await _rows(database_url, "SELECT coi, key_id FROM patient_identities")
    }
    assert keys == {first: old_key, second: new_key}
    read = await world.ok(
        "pharm", "GET", f"/api/v1/cases/{first}/patient", params={"reason": "care-coordination"}
    )
    assert read["name"] == NAME
    # The command re-encrypts what is under the old key, with a progress bar.
    env = {
        **os.environ,
        "CELLTRAIL_DATABASE_URL": as_app_role(database_url),
        "CELLTRAIL_MIGRATION_DATABASE_URL": database_url,
        "CELLTRAIL_PATIENT_KEY_FILE": str(patient_key_file),
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "backend.cli", "patient-key", "reencrypt"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"1 patient identities re-encrypted under key {new_key}" in done.stdout
    assert "re-encrypting [" in done.stderr
    assert "1/1" in done.stderr
    assert NAME not in done.stdout + done.stderr
    keys = {
        r["coi"]: r["key_id"] for r in await _rows(database_url, "SELECT coi, key_id FROM patient_identities")
    }
    assert keys == {first: new_key, second: new_key}
    listing = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "backend.cli", "patient-key", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert listing.stdout.split() == [old_key, new_key, "(current)"]
    # The old key can now go: every row opens with the new one alone.
    lines = [line for line in patient_key_file.read_text().splitlines() if old_key not in line]
    patient_key_file.write_text("\n".join(lines) + "\n")
    patient_keys.configure(patient_keys.load(settings))
    for coi, name in ((first, NAME), (second, OTHER["name"])):
        read = await world.ok(
            "pharm", "GET", f"/api/v1/cases/{coi}/patient", params={"reason": "care-coordination"}
        )
        assert read["name"] == name


async def test_a_missing_configured_key_file_stops_the_start(tmp_path):
    from backend.app import create_app

    settings = load_settings(
        {},
        database_url="postgresql://nowhere/x",
        patient_key_file=str(tmp_path / "none.key"),
        record_key_file=str(tmp_path / "record.key"),
    )
    from backend.services import record_keys

    record_keys.add_key(tmp_path / "record.key")
    with pytest.raises(patient_keys.PatientKeyError, match="PATIENT_KEY_FILE: there is no file"):
        create_app(settings)


async def test_a_row_under_a_lost_key_is_refused_and_reencrypt_leaves_it_and_names_it(
    client, database_url, patient_key_file, settings
):
    world = await build_world(client)
    coi = await _case_with_identity(world)
    before = await _rows(database_url, "SELECT key_id, ciphertext FROM patient_identities")
    # The keyring replaced by one without the key the row was sealed with.
    patient_key_file.write_text("")
    patient_keys.add_key(patient_key_file)
    patient_keys.configure(patient_keys.load(settings))
    answer = await world.call(
        "pharm", "GET", f"/api/v1/cases/{coi}/patient", params={"reason": "care-coordination"}
    )
    assert_problem(answer, 409, "not in this server's patient keyring")
    env = {
        **os.environ,
        "CELLTRAIL_DATABASE_URL": as_app_role(database_url),
        "CELLTRAIL_MIGRATION_DATABASE_URL": database_url,
        "CELLTRAIL_PATIENT_KEY_FILE": str(patient_key_file),
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "backend.cli", "patient-key", "reencrypt"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert f"case {coi}: its identity does not open" in done.stderr
    assert "0 patient identities re-encrypted" in done.stdout
    after = await _rows(database_url, "SELECT key_id, ciphertext FROM patient_identities")
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
