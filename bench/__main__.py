"""`make bench` / `make bench-smoke`: run every benchmark, print a table, write bench/results.json."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = (
    "labels_render",
    "decode",
    "ingest_broker",
    "ingest_e2e",
    "alert_latency",
    "scan_api",
    "memory",
    # Last: it loads a large history (CELLTRAIL_BENCH_GROWTH_READINGS, default in bench/growth.py).
    "growth",
)
RESULTS = Path(__file__).resolve().parent / "results.json"
# A smoke run's figures mean nothing; they must not overwrite the real ones.
SMOKE_RESULTS = RESULTS.with_name("results-smoke.json")


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description="Celltrail benchmarks")
    parser.add_argument("--smoke", action="store_true", help="a few iterations each: checks they still run")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only these (repeatable)")
    args = parser.parse_args()
    figures: list[dict[str, object]] = []
    date = datetime.now(UTC).isoformat(timespec="seconds")
    commit = _commit()
    for name in args.only or BENCHMARKS:
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        for figure in module.run(args.smoke):
            figures.append({**figure, "benchmark": name, "date": date, "commit": commit})
        print(f"# {name}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    width = max((len(str(f["figure"])) for f in figures), default=10)
    print(f"{'figure':{width}}  {'value':>12}  unit")
    for figure in figures:
        value = figure["value"]
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{figure['figure']!s:{width}}  {shown:>12}  {figure['unit']}")
    machine = {"python": platform.python_version(), "cpus": __import__("os").cpu_count(), "smoke": args.smoke}
    target = SMOKE_RESULTS if args.smoke else RESULTS
    target.write_text(json.dumps({"machine": machine, "figures": figures}, indent=2) + "\n")
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
