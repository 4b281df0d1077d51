"""`celltrail backup` and `celltrail restore` as a user runs them: custody chains with signatures,
refusals, alerts and readings survive a dump and restore, every chain verifies afterwards, a restored
database takes new custody events on the same chains, and a non-empty target is refused unless --clean.
Both an external database (CELLTRAIL_DATABASE_URL) and the embedded one in CELLTRAIL_DATA_DIR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import Settings, load_settings
from tests.conftest import ADMIN_PASSWORD
from tests.integration.journey import PASSWORD, World, build_world, starting_material_at_manufacturing
from tests.reliability.fault_counts import record

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TABLES = ("cases", "units", "shipments", "custody_events", "signatures", "alerts", "audit_log", "readings")


def _celltrail(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CELLTRAIL_")}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def _snapshot(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        counts = {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}
        heads = {
            r["coi"]: (r["chain_length"], bytes(r["chain_head"] or b""))
            for r in await conn.fetch("SELECT coi, chain_length, chain_head FROM cases")
        }
    finally:
        await conn.close()
    return {"counts": counts, "heads": heads}


async def _new_database(postgres_url: str, name: str) -> str:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{postgres_url.rpartition('/')[0]}/{name}"


async def _drop_database(postgres_url: str, name: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _history(world: World) -> list[str]:
    """Two cases through receipt at manufacturing (signed), one with a COI mismatch refusal (a critical
    alert), and readings of a registered logger."""
    cois = []
    for _ in range(2):
        coi, _aph, _ship = await starting_material_at_manufacturing(world)
        cois.append(coi)
    other = await world.new_case()
    bag = await world.unit("nurse", other, "APH", "USZ-APH")
    refused = await world.scan("nurse", "infuse", "USZ-APH", cois[0].replace("&/", ""), bag)
    assert refused.status_code >= 400, refused.text
    cois.append(other)
    await world.ok(
        "admin",
        "POST",
        "/api/v1/loggers",
        201,
        json={"id": "LGR-BKP1", "owner_site": "CTA", "issue_broker_password": False},
    )
    return cois


async def _append_after_restore(settings: Settings, coi: str) -> dict[str, Any]:
    """A backend on the restored database: a new event on a restored chain, then the API's verify."""
    async with AsyncTestClient(app=create_app(settings)) as client:
        login = await client.post("/api/v1/auth/login", json={"username": "nurse", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        world = World(client, {"nurse": headers})
        bag = await world.unit("nurse", coi, "APH", "USZ-APH")
        await world.scan_ok("nurse", "label", "USZ-APH", bag)
        verdict = await client.get(f"/api/v1/cases/{coi}/verify", headers=headers)
        assert verdict.status_code == 200, verdict.text
        result: dict[str, Any] = verdict.json()
        return result


async def test_backup_and_restore_keep_every_chain_verifiable(
    client, database_url, postgres_url, server_dir, artifacts_dir, mqtt_broker, record_key_file
):
    world = await build_world(client)
    cois = await _history(world)
    before = await _snapshot(database_url)
    assert before["counts"]["custody_events"] > 10
    assert before["counts"]["alerts"] >= 1

    dump = server_dir / "celltrail.dump"
    done = _celltrail("backup", "--out", str(dump), env={"CELLTRAIL_DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    assert dump.exists()
    assert "tables" in done.stdout
    assert oct(dump.stat().st_mode & 0o777) == "0o600"

    name = f"celltrail_restored_{os.getpid()}"
    restored = await _new_database(postgres_url, name)
    key = {"CELLTRAIL_RECORD_KEY_FILE": str(record_key_file)}
    try:
        # Without the record key, the restored chains are unverifiable: not ok, and said so.
        done = _celltrail("restore", str(dump), env={"CELLTRAIL_DATABASE_URL": restored})
        assert done.returncode == 4, done.stdout + done.stderr
        assert f"custody chains: 0 of {len(cois)} verify" in done.stdout
        assert "unverifiable" in done.stderr
        # With it, every chain verifies.
        done = _celltrail("restore", "--clean", str(dump), env={"CELLTRAIL_DATABASE_URL": restored, **key})
        assert done.returncode == 0, done.stderr
        print(done.stdout.strip())
        assert f"custody chains: {len(cois)} of {len(cois)} verify" in done.stdout
        after = await _snapshot(restored)
        assert after == before

        # A second restore over the now non-empty database is refused and changes nothing...
        again = _celltrail("restore", str(dump), env={"CELLTRAIL_DATABASE_URL": restored, **key})
        assert again.returncode == 1
        assert "not empty" in again.stderr
        assert "--clean" in again.stderr
        # ...unless --clean, which replaces the contents with the backup's.
        again = _celltrail("restore", "--clean", str(dump), env={"CELLTRAIL_DATABASE_URL": restored, **key})
        assert again.returncode == 0, again.stderr
        assert await _snapshot(restored) == before

        settings = load_settings(
            {},
            database_url=restored,
            mqtt_url=mqtt_broker.url,
            admin_password=ADMIN_PASSWORD,
            log_format="text",
            record_key_file=str(record_key_file),
        )
        verdict = await _append_after_restore(settings, cois[0])
        assert verdict["ok"] is True, verdict
        assert verdict["events"] == before["heads"][cois[0]][0] + 2  # unit registered, labelled
    finally:
        await _drop_database(postgres_url, name)

    # The embedded database of `celltrail up` (no CELLTRAIL_DATABASE_URL): restore into it, back it up.
    data = {"CELLTRAIL_DATA_DIR": str(server_dir / "data"), **key}
    done = _celltrail("restore", str(dump), env=data)
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"custody chains: {len(cois)} of {len(cois)} verify" in done.stdout
    embedded_dump = server_dir / "embedded.dump"
    done = _celltrail("backup", "--out", str(embedded_dump), env=data)
    assert done.returncode == 0, done.stderr
    assert embedded_dump.stat().st_size > 0
    record(
        artifacts_dir,
        "backup-restore",
        cases=len(cois),
        chains_verified=len(cois),
        events=before["counts"]["custody_events"],
        signatures=before["counts"]["signatures"],
        alerts=before["counts"]["alerts"],
        duplicates=0,
    )
