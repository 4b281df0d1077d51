"""Custody scan API: `POST /api/v1/scans` per second and latency, beside a bare Litestar route.

Every piece is a real process on this machine: a durable embedded PostgreSQL, `celltrail serve` (one
worker, as shipped), the bare app of bench/bare_app.py with the same uvicorn settings, and the load
generator of bench/http_load.py in its own process. The scans are real, accepted custody events: a
pharmacist re-stores bags already in storage (`store` is allowed again on a stored bag), so each request
authenticates (token look-up and user: two queries), locks the case's chain head, appends a hash-chained
event and answers 201.

* spread: the scans go round-robin over ``CASES`` cases (one bag each), as many couriers and
  pharmacists at many sites would send them;
* hot chain: every scan on one bag of one case, so all of them queue for that case's chain-head lock.

Each at fixed request rates (open loop, latency counted from each request's due time) and at saturation
(closed loop, ``CONNECTIONS`` clients). Targets: >= 1,000 scans/s spread, p99 <= 50 ms at 500 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from backend.embedded.ports import free_port, port_open
from bench.http_load import LoadResult, ScanLoad, run_load
from bench.scan_service import run_direct
from bench.stack import ADMIN_PASSWORD, REPO, Celltrail, mosquitto, postgres, wait

CASES = 200
CONNECTIONS = 32
PASSWORD = "bench-user-password"
SITE = "USZ-APH"
TARGET_PER_S = 1000
TARGET_P99_MS = 50.0


async def _seed(url: str, base_url: str, cases: int, key_file: Path) -> tuple[str, list[str]]:
    """Sites, a coordinator and a pharmacist (API), CASES cases with one bag each (API), the bags put in
    storage (directly, not through the custody journey, which is not what is measured). Returns the
    pharmacist's token and the bag ids."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as api:
        login = await api.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        root = {"Authorization": f"Bearer {login.json()['token']}"}
        for code, kind in (("USZ", "hospital"), (SITE, "apheresis")):
            site = {"code": code, "name": code, "kind": kind, "time_zone": "UTC"}
            (await api.post("/api/v1/sites", headers=root, json=site)).raise_for_status()
        tokens = {}
        for username, role in (("coord", "coordinator"), ("nurse", "pharmacist")):
            user = {
                "username": username,
                "full_name": username.title(),
                "password": PASSWORD,
                "roles": [role],
                "sites": ["USZ", SITE],
            }
            (await api.post("/api/v1/users", headers=root, json=user)).raise_for_status()
            answer = await api.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
            tokens[username] = {"Authorization": f"Bearer {answer.json()['token']}"}
        units = []
        for _ in range(cases):
            case = await api.post(
                "/api/v1/cases",
                headers=tokens["coord"],
                json={"treatment_site": "USZ", "therapy": "CAR-T (autologous)"},
            )
            case.raise_for_status()
            coi = case.json()["coi"]
            unit = await api.post(
                f"/api/v1/cases/{coi}/units",
                headers=tokens["nurse"],
                json={"kind": "APH", "product": "Apheresis", "site": SITE},
            )
            unit.raise_for_status()
            units.append(str(unit.json()["id"]))
    await _store(url, key_file, units)
    return tokens["nurse"]["Authorization"].split(" ", 1)[1], units


async def _store(url: str, key_file: Path, units: list[str]) -> None:
    """Each bag put in storage with its keyed 'store' event and the table in one transaction, as the
    server records it: a status set without its event is refused by every scan as tampering."""
    from backend.db.pool import create_pool
    from backend.domain.access import Principal, Role
    from backend.services import chain as chains
    from backend.services import record_keys
    from backend.settings import load_settings

    record_keys.configure(record_keys.load(load_settings({}, record_key_file=str(key_file))))
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            nurse = await conn.fetchrow("SELECT id, full_name FROM users WHERE username = 'nurse'")
            actor = Principal(
                nurse["id"], "nurse", nurse["full_name"], frozenset({Role.PHARMACIST}), frozenset({SITE})
            )
            for row in await conn.fetch("SELECT id, coi FROM units WHERE id = ANY($1::text[])", units):
                async with conn.transaction():
                    locked = await chains.lock(conn, row["coi"])
                    await chains.append(
                        conn,
                        locked,
                        action="store",
                        actor=actor,
                        site=SITE,
                        detail=f"stored {row['id']}",
                        unit_ids=[row["id"]],
                        data={"storage_location": "LN2-1"},
                    )
                    await conn.execute(
                        "UPDATE units SET status = 'stored', storage_location = 'LN2-1' WHERE id = $1",
                        row["id"],
                    )
    finally:
        await pool.close()


class _BareApp:
    def __init__(self, folder: Path, workers: int) -> None:
        self.port = free_port()
        log = (folder / "bare_app.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_app", "--port", str(self.port), "--workers", str(workers)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait(
            lambda: port_open("127.0.0.1", self.port, 0.2) or self.process.poll() is not None,
            30,
            "bare app listening",
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


def _figures(label: str, rate: float | None, r: LoadResult, conditions: str) -> list[dict[str, object]]:
    shape = f"{rate:g} req/s offered" if rate is not None else f"saturation, {CONNECTIONS} connections"
    detail = (
        f"{conditions}; {shape}; {r.sent} requests in {r.seconds:.1f} s, {r.errors} not 2xx "
        f"({r.statuses}); load average {os.getloadavg()[0]:.1f}"
    )
    return [
        {"figure": f"{label}, {shape}", "unit": "req/s", "value": round(r.per_s), "conditions": detail},
        {"figure": f"{label}, {shape}, p50", "unit": "ms", "value": round(r.p50_ms, 1), "conditions": detail},
        {"figure": f"{label}, {shape}, p99", "unit": "ms", "value": round(r.p99_ms, 1), "conditions": detail},
    ]


def run(smoke: bool, workers: int = 1, keyed_only: bool = False, rounds: int = 4) -> list[dict[str, object]]:
    seconds = 1.0 if smoke else 15.0
    cases = 10 if smoke else CASES
    rates: tuple[float | None, ...] = () if keyed_only else (100.0, 500.0, None)
    folder = Path(tempfile.mkdtemp(prefix="bench-scan-api-"))
    os.chmod(folder, 0o755)
    figures: list[dict[str, object]] = []
    cores = os.cpu_count()
    served = f"{workers} worker" + ("s" if workers > 1 else "")
    tag = "" if workers == 1 else f" ({served})"
    try:
        with postgres(folder) as url, mosquitto(folder) as endpoint:
            stack = Celltrail(folder, url, endpoint, bridge_password="unused", client_id="unused")
            bare = None
            try:
                stack.start_backend("--workers", str(workers))
                token, units = asyncio.run(_seed(url, stack.url, cases, stack.record_key_file))
                bare = _BareApp(folder, workers)
                real = {
                    "spread": ScanLoad(
                        "127.0.0.1", stack.port, "/api/v1/scans", token, SITE, "store", units, "LN2-2"
                    ),
                    "hot chain": ScanLoad(
                        "127.0.0.1", stack.port, "/api/v1/scans", token, SITE, "store", units[:1], "LN2-2"
                    ),
                }
                ceiling = ScanLoad(
                    "127.0.0.1", bare.port, "/api/v1/scans", None, SITE, "store", units, "LN2-2"
                )
                base = (
                    "load generator process (raw asyncio HTTP/1.1, keep-alive) -> uvicorn (uvloop, httptools,"
                    f" {served}); {cores} cores shared by PostgreSQL, server and load generator"
                )
                target = f"target >= {TARGET_PER_S}/s spread, p99 <= {TARGET_P99_MS:g} ms at 500 req/s"
                for rate in rates:
                    result = run_load(ceiling, rate, seconds, CONNECTIONS)
                    figures += _figures(
                        f"bare Litestar route (ceiling){tag}", rate, result, base + "; no database"
                    )
                    for shape, load in real.items():
                        result = run_load(load, rate, seconds, CONNECTIONS)
                        conditions = (
                            f"{base} -> durable PostgreSQL; accepted 'store' scans, "
                            + (f"round-robin over {cases} cases" if shape == "spread" else "all on one case")
                            + f"; {target}"
                        )
                        figures += _figures(f"custody scans, {shape}{tag}", rate, result, conditions)
                if workers == 1:
                    figures += _keyed_beside_unkeyed(
                        url, token, units, seconds, cases, stack.record_key_file, folder / "pgdata", rounds
                    )
            finally:
                if bare is not None:
                    bare.stop()
                stack.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def _link_micro(rounds: int = 20000) -> list[dict[str, object]]:
    """CPU per link, in this process: the keyed link (HMAC-SHA-256 with the cryptography package) beside
    the plain SHA-256 link, over a typical event's encoding. Free of the machine's load, unlike req/s."""
    import timeit
    from datetime import UTC, datetime

    from backend.domain.chain import EventRecord, event_hash, keyed_link
    from backend.domain.keyring import new_key_line, parse_keyring

    keyring = parse_keyring(new_key_line())
    assert keyring.current is not None
    key = keyring.current
    record = EventRecord(
        coi="CHA999926000001", seq=42, action="store", outcome="accepted", refusal=None,
        detail="stored CHA999926000001-APH-01", shipment_id=None, unit_ids=["CHA999926000001-APH-01"],
        actor_id=7, actor_name="Nurse", site=SITE, counterpart_id=None, codes=["CHA999926000001-APH-01"],
        device_time=None, server_time=datetime.now(UTC), gps=None, data={"storage_location": "LN2-2"},
        corrects=None, signatures=[],
    )  # fmt: skip
    previous = bytes(32)
    keyed = min(timeit.repeat(lambda: keyed_link(key, previous, record), number=rounds, repeat=5)) / rounds
    plain = min(timeit.repeat(lambda: event_hash(previous, record), number=rounds, repeat=5)) / rounds
    conditions = "one event's canonical encoding and link, best of 5 x 20,000, one core"
    return [
        {"figure": figure, "unit": "us", "value": round(seconds * 1e6, 2), "conditions": conditions}
        for figure, seconds in (
            ("chain link, keyed (HMAC-SHA-256)", keyed),
            ("chain link, unkeyed (SHA-256)", plain),
        )
    ]


def _postgres_cpu_seconds(pgdata: Path) -> float:
    """CPU seconds (user + system) the PostgreSQL of ``pgdata`` has spent: the postmaster, its live
    processes and the ones that exited (which the postmaster reaped, so their times are its children's).
    Differences of this around a run are the database's CPU for that run, whatever else loads the machine."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")

    def fields(pid: int) -> list[str] | None:
        try:
            # After the ")" that closes the command name: state is field 3, ppid 4, utime 14, stime 15,
            # cutime 16, cstime 17 (man 5 proc), so list index = field - 3.
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return None

    own = fields(postmaster)
    assert own is not None, "the benchmark's PostgreSQL is not running"
    ticks = sum(int(v) for v in own[11:15])
    for entry in Path("/proc").iterdir():
        child = fields(int(entry.name)) if entry.name.isdigit() else None
        if child is not None and child[1] == str(postmaster):
            ticks += int(child[11]) + int(child[12])
    return ticks / tick


def _keyed_beside_unkeyed(
    url: str,
    token: str,
    units: list[str],
    seconds: float,
    cases: int,
    key_file: Path,
    pgdata: Path,
    rounds: int = 4,
) -> list[dict[str, object]]:
    """The scan service ceiling with the keyed chain (HMAC links, the stored-against-recorded state check
    in the chain-lock statement) and without it (plain SHA-256 links, the bare chain lock: the code before
    issue 18), alternated `rounds` times so that the machine's drift and the growing tables fall on both;
    each figure is the median of its runs, and the cost the mean of the pairs' costs.

    Scans per second follow whatever else the machine is doing; CPU per scan (the load process's and
    PostgreSQL's, each counted by the kernel) does not, so the cost is given both ways."""
    cores = os.cpu_count()
    runs: dict[bool, list[LoadResult]] = {True: [], False: []}
    cpu_per_scan: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(rounds):
        # The order alternates too: the tables grow during the run, and the later run of a pair meets
        # a longer chain.
        for keyed in (False, True) if round_ % 2 == 0 else (True, False):
            database_before = _postgres_cpu_seconds(pgdata)
            result = run_direct(url, token, SITE, units, seconds, CONNECTIONS, key_file=key_file, keyed=keyed)
            # The pool's connections have closed; give the postmaster a moment to reap their processes.
            time.sleep(0.5)
            database = _postgres_cpu_seconds(pgdata) - database_before
            runs[keyed].append(result)
            cpu_per_scan[keyed].append((result.cpu_s + database) / max(result.ok, 1))
    figures: list[dict[str, object]] = []
    labels = {
        True: "scan service alone, no HTTP (ceiling)",
        False: "scan service alone, no HTTP, unkeyed chain (before issue 18)",
    }
    median: dict[bool, LoadResult] = {}
    median_cpu: dict[bool, float] = {}
    for keyed, label in labels.items():
        median[keyed] = sorted(runs[keyed], key=lambda r: r.per_s)[rounds // 2]
        median_cpu[keyed] = sorted(cpu_per_scan[keyed])[rounds // 2]
        other = "unkeyed" if keyed else "keyed"
        conditions = (
            f"one process calling authenticate + record_scan from {CONNECTIONS} tasks on a pool"
            f" of 10 (the server's default), no HTTP -> durable PostgreSQL; round-robin over"
            f" {cases} cases; {cores} cores shared; the median of {rounds} runs alternated with the "
            + other
            + f" ones ({', '.join(f'{r.per_s:.0f}' for r in runs[keyed])}/s)"
        )
        figures += _figures(label, None, median[keyed], conditions)
        figures.append(
            {
                "figure": f"{label}, CPU per scan (load process + PostgreSQL)",
                "unit": "us",
                "value": round(median_cpu[keyed] * 1e6),
                "conditions": "user + system CPU of the calling process and of every PostgreSQL process"
                f" over the run, per accepted scan; the median of {rounds} runs alternated with the {other}"
                f" ones ({', '.join(f'{c * 1e6:.0f}' for c in cpu_per_scan[keyed])} us)",
            }
        )
    # Each pair's cost, keyed against unkeyed: the later run of a pair meets grown tables and costs more
    # whichever it is, so the pairs alternate their order and the cost is the mean over an even number
    # of pairs, where that drift cancels; the medians above do not cancel it.
    pairs = list(zip(runs[True], runs[False], strict=True))
    cpu_pairs = list(zip(cpu_per_scan[True], cpu_per_scan[False], strict=True))
    rate_costs = [100 * (plain.per_s - keyed.per_s) / plain.per_s for keyed, plain in pairs if plain.per_s]
    cpu_costs = [100 * (keyed - plain) / plain for keyed, plain in cpu_pairs if plain]
    balance = (
        f"the mean of {rounds} alternated pairs' costs (each pair: keyed against unkeyed, same database;"
        " the order alternates so that the later run's drift cancels)"
    )
    figures.append(
        {
            "figure": "keyed chain: cost in scans/s against the unkeyed chain (budget 10 %)",
            "unit": "%",
            "value": round(sum(rate_costs) / len(rate_costs), 1) if rate_costs else 0.0,
            "conditions": f"{balance}: {', '.join(f'{c:.1f}' for c in rate_costs)} %",
        }
    )
    figures.append(
        {
            "figure": "keyed chain: cost in CPU per scan against the unkeyed chain (budget 10 %)",
            "unit": "%",
            "value": round(sum(cpu_costs) / len(cpu_costs), 1) if cpu_costs else 0.0,
            "conditions": f"{balance}: {', '.join(f'{c:.1f}' for c in cpu_costs)} %; CPU per scan is"
            " free of the machine's other load, unlike scans/s",
        }
    )
    return figures + _link_micro()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="1 s per level: checks it runs, not how fast")
    parser.add_argument("--workers", type=int, default=1, help="backend and bare-route worker processes")
    parser.add_argument(
        "--keyed-only", action="store_true", help="only the keyed chain beside the unkeyed one (no HTTP)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="keyed/unkeyed pairs of runs (even, so that the alternating order cancels the tables' growth)",
    )
    args = parser.parse_args()
    figures = run(args.smoke, args.workers, args.keyed_only, args.rounds)
    for f in figures:
        print(f"{f['figure']:<70} {f['value']:>8} {f['unit']}")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
