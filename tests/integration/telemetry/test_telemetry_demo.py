"""The demo fleet: `celltrail up --demo --loggers N` registers LGR-0001..N and their readings arrive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from telemetry_support import free_port, mosquitto, wait_for

from backend.db.pool import create_pool
from backend.demo import DEMO_LOGGER_SITE, seed
from backend.services.loggers import calibration_problem


async def test_seed_registers_the_simulated_fleet_once_with_one_logger_overdue(database_url):
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await seed(pool, loggers=3)
        await seed(pool, loggers=3)
        rows = await pool.fetch("SELECT id, owner_site, calibration_due, active FROM loggers ORDER BY id")
    finally:
        await pool.close()
    assert [(r["id"], r["owner_site"], r["active"]) for r in rows] == [
        ("LGR-0001", DEMO_LOGGER_SITE, True),
        ("LGR-0002", DEMO_LOGGER_SITE, True),
        ("LGR-0003", DEMO_LOGGER_SITE, True),
    ]
    now = datetime.now(UTC)
    assert [calibration_problem(r["id"], r["calibration_due"], now) is None for r in rows] == [
        True,
        True,
        False,
    ]
    assert rows[0]["calibration_due"] > (now + timedelta(days=360)).date()


def _get(url: str, token: str | None = None) -> object:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
        return json.loads(response.read())


def _token(base: str) -> str:
    body = json.dumps({"username": "admin", "password": "celltrail-admin"}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(json.loads(response.read())["token"])


@pytest.mark.slow
def test_up_demo_ends_with_the_simulated_fleets_readings_stored(server_dir):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = server_dir / "up.log"
    with mosquitto(server_dir / "broker") as mqtt_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELLTRAIL_")}
        env.update(
            CELLTRAIL_DATA_DIR=str(server_dir / "data"), CELLTRAIL_PORT=str(port), CELLTRAIL_MQTT_URL=mqtt_url
        )
        with log_path.open("wb") as log:
            up = subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "up", "--demo", "--loggers", "3"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:

            def healthy() -> bool:
                assert up.poll() is None, log_path.read_text()
                try:
                    return bool(_get(f"{base}/healthz"))
                except OSError:
                    return False

            wait_for(healthy, 90, "celltrail up to be healthy", interval=0.3)
            token = _token(base)

            def every_logger_reported() -> bool:
                readings = [_get(f"{base}/api/v1/loggers/LGR-000{i}/readings", token) for i in (1, 2, 3)]
                return all(readings)

            wait_for(
                every_logger_reported, 60, "readings of LGR-0001..3\n" + log_path.read_text()[-3000:], 0.5
            )
            detail = _get(f"{base}/api/v1/loggers/LGR-0002", token)
            assert isinstance(detail, dict)
            assert detail["online"] is True
            assert detail["last_reading"] is not None
            print("demo logger LGR-0002:", detail["last_reading"], "battery", detail["battery_pct"])
        finally:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
