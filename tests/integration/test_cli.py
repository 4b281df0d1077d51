"""The `celltrail` command line against a real database."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg


def celltrail(*args: str, database_url: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CELLTRAIL_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_site_and_user_commands(database_url):
    assert celltrail("migrate", database_url=database_url).stdout.strip() == "the schema is up to date"
    made = celltrail(
        "site",
        "add",
        "USZ",
        "--name",
        "University Hospital Zurich",
        "--kind",
        "hospital",
        "--time-zone",
        "Europe/Zurich",
        database_url=database_url,
    )
    assert made.returncode == 0, made.stderr
    added = celltrail(
        "user",
        "add",
        "petra",
        "--full-name",
        "Petra Pharmacist",
        "--role",
        "pharmacist",
        "--site",
        "USZ",
        "--password-stdin",
        database_url=database_url,
        stdin="a long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    assert "created petra (pharmacist at USZ)" in added.stdout
    listing = celltrail("user", "list", database_url=database_url)
    assert "petra" in listing.stdout
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE username = 'petra'")
    finally:
        await conn.close()
    assert stored.startswith("$argon2id$")


def test_bad_setting_is_a_clear_error(database_url):
    env = {**os.environ, "CELLTRAIL_PORT": "many"}
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error: CELLTRAIL_PORT" in result.stderr


def test_every_verb_has_help():
    for verb in ("up", "serve", "bridge", "simulate", "scan", "label", "migrate", "user", "report"):
        result = subprocess.run(
            [sys.executable, "-m", "backend.cli", verb, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (verb, result.stderr)
        assert "usage: celltrail" in result.stdout
