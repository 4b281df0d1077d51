"""`celltrail up --demo` as a user runs it: from nothing to a healthy system, Ctrl-C, and again with the
same data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from backend.embedded.ports import free_port


def _get(url: str, token: str | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _post(url: str, body: dict[str, object], token: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLTRAIL_")}
    env.update(CELLTRAIL_DATA_DIR=str(data_dir), CELLTRAIL_PORT=str(port))
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "up", "--demo", "--loggers", "3"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> float:
    started = time.monotonic()
    while time.monotonic() - started < 60:
        assert process.poll() is None, log.read_text()
        try:
            status, _ = _get(f"{base}/healthz")
            if status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("not healthy within 60 s:\n" + log.read_text())


def _assert_private(data_dir: Path) -> None:
    """Everything `up` and its children wrote (database files and log, broker config, log and sessions,
    the bridge's buffer and credentials) is readable by this user only."""
    files = [path for path in data_dir.rglob("*") if path.is_file() and not path.is_symlink()]
    names = {path.name for path in files}
    # The bridge's queue may not exist yet when `up` is stopped this early; its mode is tested in
    # tests/unit/test_file_modes.py, and checked here whenever it is there.
    assert {"postgres.log", "broker.log"} <= names, sorted(names)
    wide = sorted(
        f"{path.relative_to(data_dir)} {path.stat().st_mode & 0o777:o}"
        for path in files
        if path.stat().st_mode & 0o077
    )
    assert wide == [], wide


def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0, log.read_text()


def test_up_runs_everything_stops_cleanly_and_keeps_data(tmp_path, server_dir):
    data_dir = server_dir / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "up.log"

    first = _start(data_dir, port, log)
    try:
        _wait_healthy(base, first, log)
        status, body = _post(
            f"{base}/api/v1/auth/login", {"username": "admin", "password": "celltrail-admin"}
        )
        assert status == 200, body
        token = str(body["token"])
        status, health = _get(f"{base}/healthz")
        assert (status, health) == (200, {"status": "ok"})  # the details are for signed-in callers
        status, health = _get(f"{base}/healthz", token)
        assert health["database"]["ok"], health  # type: ignore[index]
        assert health["broker"]["ok"], health  # type: ignore[index]
        status, body = _post(
            f"{base}/api/v1/sites",
            {"code": "KEEP", "name": "Kept across restarts", "kind": "hospital", "time_zone": "UTC"},
            token,
        )
        assert status == 201, body
        status, demo = _post(
            f"{base}/api/v1/auth/login", {"username": "pharmacist", "password": "celltrail-demo"}
        )
        assert status == 200, demo
        output = log.read_text()
        assert f"Celltrail is running at {base}" in output
        assert "celltrail-demo" in output
    finally:
        if first.poll() is None:
            _stop(first, log)
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "PostgreSQL was left running"
    _assert_private(data_dir)

    second = _start(data_dir, port, log)
    try:
        _wait_healthy(base, second, log)
        status, body = _post(
            f"{base}/api/v1/auth/login", {"username": "admin", "password": "celltrail-admin"}
        )
        status, site = _get(f"{base}/api/v1/sites/KEEP", str(body["token"]))
        assert status == 200, site
    finally:
        _stop(second, log)
