"""The one-line count summary every fault scenario ends with, printed and kept in
artifacts/fault-counts.json (one entry per scenario, the latest run's)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

FILE = "fault-counts.json"


def record(artifacts_dir: Path, scenario: str, **counts: object) -> str:
    line = f"FAULT {scenario}: " + " ".join(f"{key}={value}" for key, value in counts.items())
    print(line)
    path = artifacts_dir / FILE
    try:
        everything = json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        everything = {}
    everything[scenario] = {**counts, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    path.write_text(json.dumps(everything, indent=2, sort_keys=True) + "\n")
    return line
