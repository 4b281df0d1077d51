"""Peak memory of the backend and the bridge with 10,000 simulated loggers.

Every piece a real process: a durable embedded PostgreSQL, Mosquitto, `celltrail serve`, `celltrail
bridge`, and `celltrail simulate --loggers 10000 --interval 10` (1,000 messages/s from 10,000 registered
loggers, with the simulator's faults: backlogs, duplicates, out-of-order delivery, binary frames). Peak
RSS is the kernel's high-water mark (VmHWM in /proc/PID/status) of each process at the end of the run,
so a short spike counts as much as a steady level. Target: bridge <= 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.ingest_e2e import BRIDGE_PASSWORD, _create_bridge_account
from bench.stack import REPO, Celltrail, mosquitto, postgres

LOGGERS = 10_000
INTERVAL_S = 10.0
TARGET_BRIDGE_MB = 200


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size so far, in MB (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


async def _register(url: str, loggers: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            # The simulator's ids: LGR-0001 ... LGR-9999, LGR-10000 (lpad would cut 10000 to 1000).
            "INSERT INTO loggers (id, owner_site) "
            "SELECT 'LGR-' || CASE WHEN g < 10000 THEN lpad(g::text, 4, '0') ELSE g::text END, 'HQ' "
            "FROM generate_series(1, $1::int) g",
            loggers,
        )
    finally:
        await conn.close()


async def _count(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        readings = int(await conn.fetchval("SELECT count(*) FROM readings"))
        loggers = int(await conn.fetchval("SELECT count(DISTINCT logger_id) FROM readings"))
    finally:
        await conn.close()
    return readings, loggers


def run(smoke: bool) -> list[dict[str, object]]:
    seconds = 5.0 if smoke else 60.0
    # The smoke run checks that the pieces still fit together; 10,000 loggers take it 20 s to start.
    fleet = 1000 if smoke else LOGGERS
    folder = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    os.chmod(folder, 0o755)
    figures: list[dict[str, object]] = []
    try:
        with postgres(folder) as url, mosquitto(folder) as endpoint:
            stack = Celltrail(
                folder, url, endpoint, bridge_password=BRIDGE_PASSWORD, client_id=f"bench-mem-{os.getpid()}"
            )
            try:
                stack.start_backend()
                _create_bridge_account(stack)
                asyncio.run(_register(url, fleet))
                stack.start_bridge(endpoint)
                backend, bridge = stack.processes[0], stack.processes[1]
                log = (folder / "simulate.log").open("ab")
                simulator = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "backend.cli",
                        "simulate",
                        "--loggers",
                        str(fleet),
                        "--interval",
                        f"{INTERVAL_S:g}",
                        "--duration",
                        f"{seconds:g}",
                    ],
                    cwd=REPO,
                    env=stack.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    simulator.wait(seconds + 60)
                except subprocess.TimeoutExpired:
                    simulator.send_signal(signal.SIGTERM)
                    simulator.wait(30)
                time.sleep(2.0)  # the last batches reach the database
                readings, loggers = asyncio.run(_count(url))
                sizes = {"bridge": peak_rss_mb(bridge.pid), "backend": peak_rss_mb(backend.pid)}
            finally:
                stack.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    conditions = (
        f"celltrail simulate --loggers {fleet} --interval {INTERVAL_S:g} for {seconds:g} s "
        f"({fleet / INTERVAL_S:,.0f} msg/s offered, simulator faults on); {readings} readings from "
        f"{loggers} loggers stored; VmHWM at the end; {os.cpu_count()} cores "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    figures.append(
        {
            "figure": f"peak RSS, bridge, {fleet:,} loggers",
            "unit": "MB",
            "value": round(sizes["bridge"], 1),
            "conditions": conditions + f"; target <= {TARGET_BRIDGE_MB} MB",
        }
    )
    figures.append(
        {
            "figure": f"peak RSS, backend, {fleet:,} loggers",
            "unit": "MB",
            "value": round(sizes["backend"], 1),
            "conditions": conditions + "; celltrail serve, 1 worker",
        }
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--smoke", action="store_true", help="1,000 loggers for 5 s instead of 10,000 for 60 s"
    )
    figures = run(parser.parse_args().smoke)
    for f in figures:
        print(f"{f['figure']:<40} {f['value']:>8} {f['unit']:<4} {f['conditions']}")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
