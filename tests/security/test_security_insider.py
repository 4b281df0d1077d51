"""Issue 18: an insider with the database's superuser, against the keyed chain, the replayed states and
the external checkpoints. Each attack is the one the issue reports as having passed `/verify` before:
(a) a mid-chain rewrite relinked with Celltrail's own hashing code, (b) a forged append with a head
update, (c) a status changed without an event, (d) the newest events deleted and the head reset. Plus
the keyring itself: rotation, a missing key (unverifiable, never ok) and a key file that cannot be read.
A backup restored with and without the key: tests/reliability/test_backup_restore.py. The RFC 3161
path: test_security_timestamps.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pypdfium2 as pdfium
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.db.pool import create_pool
from backend.db.repo import events
from backend.db.types import Pool
from backend.domain.chain import event_hash
from backend.services import checkpoints, record_keys
from backend.settings import Settings, SettingsError
from tests.integration.journey import PASSWORD, World, build_world, released_bag, stored_bag

REPO = Path(__file__).resolve().parents[2]


def pdf_text(content: bytes) -> str:
    document = pdfium.PdfDocument(content)
    return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


@pytest.fixture
async def superuser(database_url: str) -> AsyncIterator[Pool]:
    """The database as its superuser, with Celltrail's own connection set-up (jsonb as Python values)."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        yield pool
    finally:
        await pool.close()


async def verdict_of(world: World, coi: str) -> dict[str, Any]:
    result: dict[str, Any] = await world.ok("qa", "GET", f"/api/v1/cases/{coi}/verify")
    return result


async def test_a_mid_chain_rewrite_relinked_without_the_key_fails_at_that_event(client, superuser):
    world = await build_world(client)
    coi, _prc = await stored_bag(world)
    assert (await verdict_of(world, coi))["ok"] is True
    async with superuser.acquire() as conn:
        stored = await events.events_of_case(conn, coi)
        target = next(e for e in stored if e.record.action == "receipt")
        # As the issue did it: replication role (no triggers), the receipt's checklist and actor edited,
        # every later link recomputed with Celltrail's own hashing code and the head moved along.
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            previous = target.prev_hash
            for event in stored[target.record.seq - 1 :]:
                record = event.record
                if event.id == target.id:
                    data = {**record.data, "checklist": {"seals_intact": True, "forged": True}}
                    record = msgspec.structs.replace(record, actor_name="Somebody Else", data=data)
                    await conn.execute(
                        "UPDATE custody_events SET actor_name = $2, data = $3 WHERE id = $1",
                        event.id,
                        record.actor_name,
                        record.data,
                    )
                digest = event_hash(previous, record)
                await conn.execute(
                    "UPDATE custody_events SET prev_hash = $2, hash = $3 WHERE id = $1",
                    event.id,
                    previous,
                    digest,
                )
                previous = digest
            await conn.execute("UPDATE cases SET chain_head = $2 WHERE coi = $1", coi, previous)
    verdict = await verdict_of(world, coi)
    assert verdict["ok"] is False
    assert verdict["status"] == "broken"
    assert verdict["first_break"]["seq"] == target.record.seq, verdict
    assert "keyed link" in verdict["first_break"]["reason"]

    # Dropping the key ids as well (claiming the events are legacy) is no way out: they were recorded
    # after keys were introduced.
    async with superuser.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("UPDATE custody_events SET key_id = NULL WHERE coi = $1", coi)
    verdict = await verdict_of(world, coi)
    assert verdict["ok"] is False
    assert verdict["first_break"]["seq"] == 1
    assert "recomputed without the record key" in verdict["first_break"]["reason"]


@pytest.mark.parametrize("key_id", ["real", None, "0123456789abcdef"])
async def test_a_forged_append_with_a_head_update_is_not_ok(client, superuser, key_id):
    world = await build_world(client)
    coi, prc = await stored_bag(world)
    async with superuser.acquire() as conn:
        stored = await events.events_of_case(conn, coi)
        last = stored[-1]
        forged = msgspec.structs.replace(
            last.record,
            seq=last.record.seq + 1,
            action="dispose",
            detail=f"disposed {prc}",
            data={"reason": "forged"},
            signatures=[],
        )
        digest = event_hash(last.hash, forged)
        named = (
            record_keys.current().current.key_id  # type: ignore[union-attr]
            if key_id == "real"
            else key_id
        )
        # A plain INSERT (no trigger disabled) and the head moved onto it, as in the issue.
        await conn.execute(
            """INSERT INTO custody_events (coi, seq, action, outcome, detail, shipment_id, unit_ids,
                   actor_id, actor_name, site, codes, server_time, data, prev_hash, hash, key_id)
               VALUES ($1, $2, 'dispose', 'accepted', $3, NULL, $4, $5, $6, $7, '{}', $8, $9, $10, $11,
                       $12)""",
            coi,
            forged.seq,
            forged.detail,
            forged.unit_ids,
            forged.actor_id,
            forged.actor_name,
            forged.site,
            forged.server_time,
            forged.data,
            last.hash,
            digest,
            named,
        )
        await conn.execute(
            "UPDATE cases SET chain_length = $2, chain_head = $3 WHERE coi = $1", coi, forged.seq, digest
        )
        # ...and the table made to agree with the forged record.
        await conn.execute("UPDATE units SET status = 'disposed' WHERE id = $1", prc)
    verdict = await verdict_of(world, coi)
    assert verdict["ok"] is False
    if key_id == "0123456789abcdef":
        # A key this server does not hold: nothing can be said about the event, so not ok either.
        assert verdict["status"] == "unverifiable"
        assert verdict["missing_keys"] == ["0123456789abcdef"]
    else:
        assert verdict["status"] == "broken"
        assert verdict["first_break"]["seq"] == forged.seq


async def test_a_status_changed_without_an_event_is_reported_and_the_next_scan_refused(client, superuser):
    world = await build_world(client)
    coi, prc = await stored_bag(world)
    await world.scan_ok("pharm", "dispense", "USZ", prc)
    # The attack: the bag "thawed" in the table, no thaw event, so that an infusion would pass.
    async with superuser.acquire() as conn:
        await conn.execute("UPDATE units SET status = 'thawed' WHERE id = $1", prc)
    verdict = await verdict_of(world, coi)
    assert verdict["ok"] is False
    assert verdict["first_break"] is None  # the chain itself is intact...
    assert {
        "object": "unit",
        "id": prc,
        "field": "status",
        "recorded": "dispensed",
        "stored": "thawed",
    } in verdict["state_mismatches"]  # ...the table is not
    assert prc in verdict["message"]

    refused = await world.scan(
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
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["refusal"] == "record_mismatch"
    assert "thawed" in body["detail"]
    assert "dispensed" in body["detail"]
    unit = await world.ok("pharm", "GET", f"/api/v1/units/{prc}")
    assert unit["status"] == "thawed"  # nothing was infused
    alerts = await world.ok("coord", "GET", "/api/v1/alerts", params={"coi": coi})
    mismatch = [a for a in alerts if a["kind"] == "record_mismatch"]
    assert mismatch, alerts
    assert mismatch[0]["severity"] == "critical"
    assert mismatch[0]["event_id"] == body["event_id"]

    # A shipment's status is checked the same way.
    async with superuser.acquire() as conn:
        ship = await conn.fetchval("SELECT shipment_id FROM units WHERE id = $1", prc)
        await conn.execute("UPDATE shipments SET status = 'in_transit' WHERE id = $1", ship)
    refused = await world.scan("pharm", "receive", "USZ", ship)
    assert refused.status_code == 409, refused.text
    assert refused.json()["refusal"] == "record_mismatch"


async def test_a_release_flag_set_without_a_qa_release_is_refused_at_packing(client, superuser):
    world = await build_world(client)
    coi, _released = await released_bag(world)
    bag = await world.unit("mfg", coi, "PRC", "CTA")
    await world.scan_ok("mfg", "label", "CTA", bag)
    # No QA signature: the flag alone is set, which would let the bag be shipped.
    async with superuser.acquire() as conn:
        await conn.execute("UPDATE units SET released = true WHERE id = $1", bag)
    ship = await world.shipment("mfg", coi, "CTA", "USZ", [bag], profile="cryo")
    refused = await world.scan("mfg", "pack", "CTA", ship, bag)
    assert refused.status_code == 409, refused.text
    assert refused.json()["refusal"] == "record_mismatch"
    assert "not released in its record" in refused.json()["detail"]
    verdict = await verdict_of(world, coi)
    assert {"object": "unit", "id": bag, "field": "released", "recorded": False, "stored": True} in verdict[
        "state_mismatches"
    ]


def _celltrail(
    url: str, settings: Settings, record_key_file: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CELLTRAIL_")}
    env = {
        **clean,
        "CELLTRAIL_DATABASE_URL": url,
        "CELLTRAIL_RECORD_KEY_FILE": str(record_key_file),
        "CELLTRAIL_CHECKPOINT_DIR": str(settings.checkpoint_path),
    }
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_newest_events_deleted_and_the_head_reset_are_caught_by_the_checkpoint(
    client, superuser, settings, record_key_file, database_url
):
    world = await build_world(client)
    coi, prc = await stored_bag(world)
    await world.scan_ok("pharm", "dispense", "USZ", prc)
    await world.scan_ok("pharm", "thaw", "USZ", prc)
    # On demand, from the command line.
    done = _celltrail(database_url, settings, record_key_file, "checkpoint")
    assert done.returncode == 0, done.stdout + done.stderr
    (written,) = [settings.checkpoint_path / name for name in checkpoints.names(settings.checkpoint_path)]
    assert str(written) in done.stdout
    assert oct(os.stat(written).st_mode & 0o777) == "0o600"
    verdict = await verdict_of(world, coi)
    assert verdict["ok"] is True
    assert verdict["checkpoint"]["covers"] == verdict["events"]
    done = _celltrail(database_url, settings, record_key_file, "verify", "--all")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 of 1 chains verified" in done.stdout

    # A thorough insider: the thaw and dispense events deleted, the head reset onto the store event and
    # the bag put back to 'stored', so links, head and tables all agree again.
    async with superuser.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        stored = await events.events_of_case(conn, coi)
        kept = stored[-3]
        assert kept.record.action == "store"
        await conn.execute("DELETE FROM custody_events WHERE coi = $1 AND seq > $2", coi, kept.record.seq)
        await conn.execute(
            "UPDATE cases SET chain_length = $2, chain_head = $3 WHERE coi = $1",
            coi,
            kept.record.seq,
            kept.hash,
        )
        await conn.execute("UPDATE units SET status = 'stored', thawed_at = NULL WHERE id = $1", prc)
    verdict = await verdict_of(world, coi)
    assert verdict["ok"] is False, verdict
    assert verdict["state_mismatches"] == []
    assert "events were removed" in verdict["first_break"]["reason"]
    assert verdict["checkpoint"]["file"] == written.name
    done = _celltrail(database_url, settings, record_key_file, "verify", "--all")
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{coi}: broken" in done.stdout
    assert "events were removed" in done.stdout
    # The report prints the checkpoint and that it contradicts the chain.
    record = await world.ok("qa", "GET", f"/api/v1/cases/{coi}/record.json")
    assert "CONTRADICTS" in record["chain"]["checkpoint"]


async def test_the_vein_to_vein_record_names_the_checkpoint_covering_its_last_event(
    client, superuser, settings
):
    world = await build_world(client)
    coi, _prc = await stored_bag(world)
    record = await world.ok("qa", "GET", f"/api/v1/cases/{coi}/record.json")
    assert record["chain"]["checkpoint"] == "no checkpoint yet"
    written = await checkpoints.write(superuser, record_keys.current(), settings.checkpoint_path)
    record = await world.ok("qa", "GET", f"/api/v1/cases/{coi}/record.json")
    assert Path(written.path).name in record["chain"]["checkpoint"]
    assert "covers the last event" in record["chain"]["checkpoint"]
    pdf = await world.call("qa", "GET", f"/api/v1/cases/{coi}/report.pdf")
    assert pdf.status_code == 200
    text = " ".join(pdf_text(pdf.content).split())
    assert "External checkpoint:" in text
    assert "covers the last event" in text
    # A checkpoint is never overwritten: a second one is a new file.
    again = await checkpoints.write(superuser, record_keys.current(), settings.checkpoint_path)
    assert again.path != written.path
    assert len(checkpoints.names(settings.checkpoint_path)) == 2


async def test_checkpoints_are_written_on_a_schedule(settings):
    quick = msgspec.structs.replace(settings, housekeeping_seconds=0.2, checkpoint_minutes=0.01)
    async with AsyncTestClient(app=create_app(quick)):
        for _ in range(100):
            if len(checkpoints.names(settings.checkpoint_path)) >= 2:
                break
            await asyncio.sleep(0.1)
    # The first at once (there was none), the next when the first was older than 0.6 s.
    assert len(checkpoints.names(settings.checkpoint_path)) >= 2


async def _verdict_with(settings: Settings, coi: str) -> dict[str, Any]:
    async with AsyncTestClient(app=create_app(settings)) as other:
        login = await other.post("/api/v1/auth/login", json={"username": "qa", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        response = await other.get(f"/api/v1/cases/{coi}/verify", headers=headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


async def test_rotation_and_a_missing_key(client, settings, record_key_file, server_dir):
    world = await build_world(client)
    coi, _prc = await stored_bag(world)
    first = record_keys.current().current
    assert first is not None

    # Rotation: a copy of the keyring with a new key appended; new events are linked with the new key.
    rotated = server_dir / "rotated.key"
    rotated.write_bytes(record_key_file.read_bytes())
    keyring = record_keys.add_key(rotated)
    assert keyring.current is not None
    assert keyring.current.key_id != first.key_id
    with_rotation = msgspec.structs.replace(settings, record_key_file=str(rotated))
    async with AsyncTestClient(app=create_app(with_rotation)) as other:
        rotated_world = World(other, dict(world.headers))
        await rotated_world.scan_ok("pharm", "dispense", "USZ", _prc)
    verdict = await _verdict_with(with_rotation, coi)
    assert verdict["ok"] is True, verdict
    assert sorted(verdict["key_ids"]) == sorted([first.key_id, keyring.current.key_id])

    # Only the new key: the events linked with the old one cannot be checked: unverifiable, not ok.
    only_new = server_dir / "only-new.key"
    only_new.write_text(rotated.read_text().splitlines()[-1] + "\n")
    os.chmod(only_new, 0o600)
    verdict = await _verdict_with(msgspec.structs.replace(settings, record_key_file=str(only_new)), coi)
    assert verdict["ok"] is False
    assert verdict["status"] == "unverifiable"
    assert verdict["missing_keys"] == [first.key_id]
    assert "unverifiable" in verdict["message"]


def test_a_configured_key_file_that_cannot_be_read_stops_the_start(settings, server_dir):
    for path, words in (
        (server_dir / "absent.key", "there is no file"),
        (server_dir, "cannot be read"),  # a directory
    ):
        with pytest.raises(SettingsError) as raised:
            create_app(msgspec.structs.replace(settings, record_key_file=str(path)))
        assert "CELLTRAIL_RECORD_KEY_FILE" in str(raised.value)
        assert words in str(raised.value)
    garbage = server_dir / "garbage.key"
    garbage.write_text("not a key\n")
    with pytest.raises(SettingsError, match="not a base64 key"):
        create_app(msgspec.structs.replace(settings, record_key_file=str(garbage)))
    # None configured and none in a data directory that cannot hold one: said so, not a traceback.
    unusable = msgspec.structs.replace(settings, record_key_file=None, data_dir=str(garbage / "data"))
    with pytest.raises(SettingsError, match="cannot be created there"):
        create_app(unusable)
    # None configured, a usable data directory: created there, 0600, and used from then on.
    fresh = msgspec.structs.replace(settings, record_key_file=None, data_dir=str(server_dir / "data"))
    create_app(fresh)
    created = server_dir / "data" / "record.key"
    assert oct(created.stat().st_mode & 0o777) == "0o600"
    first = created.read_text()
    create_app(fresh)
    assert created.read_text() == first
