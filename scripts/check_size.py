"""Module and function size limits for product code (`make lint`): no module over MAX_LINES lines and no
function over MAX_COMPLEXITY (cyclomatic, as radon counts it). The modules and functions that were over
when the limits came in are listed in scripts/size-baseline.txt with their size then; they may shrink, and
must leave the list when they are within the limits, but may not grow, and nothing new may join them.

    python scripts/check_size.py            # check (exit 1 on a new or grown offender)
    python scripts/check_size.py --write    # rewrite the baseline from today's tree (only ever shrinks it)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("backend", "celltrail_shared", "scanner", "labels", "firmware_bridge")
MAX_LINES = 400
MAX_COMPLEXITY = 15
BASELINE = ROOT / "scripts" / "size-baseline.txt"


def measure(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, int]:
    """Every offender in the tree: 'path' -> lines, 'path::function' -> complexity."""
    found: dict[str, int] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            text = path.read_text(encoding="utf-8")
            lines = text.count("\n")
            if lines > MAX_LINES:
                found[name] = lines
            for block in cc_visit(text):
                if block.complexity > MAX_COMPLEXITY:
                    owner = getattr(block, "classname", None)
                    qualified = f"{owner}.{block.name}" if owner else block.name
                    key = f"{name}::{qualified}"
                    found[key] = max(block.complexity, found.get(key, 0))
    return found


def read_baseline() -> dict[str, int]:
    allowed: dict[str, int] = {}
    for line in BASELINE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            allowed[key] = int(value)
    return allowed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="rewrite the baseline (it may only shrink)")
    args = parser.parse_args()
    found = measure()
    allowed = read_baseline() if BASELINE.exists() else {}
    if args.write:
        grown = {k: v for k, v in found.items() if allowed and v > allowed.get(k, 0)}
        if grown:
            print("refusing to grow the baseline:", *sorted(grown), sep="\n  ")
            return 1
        header = (
            f"# Over the limits ({MAX_LINES} lines a module, complexity {MAX_COMPLEXITY} a function):"
            " may shrink, never grow.\n"
        )
        listed = "".join(f"{k} {v}\n" for k, v in sorted(found.items()))
        BASELINE.write_text(header + listed, encoding="utf-8")
        return 0
    problems = []
    for key, value in sorted(found.items()):
        unit = "complexity" if "::" in key else "lines"
        limit = MAX_COMPLEXITY if "::" in key else MAX_LINES
        if key not in allowed:
            problems.append(f"{key}: {unit} {value} (limit {limit})")
        elif value > allowed[key]:
            problems.append(f"{key}: {unit} {value}, was {allowed[key]}: split it rather than let it grow")
    healed = sorted(set(allowed) - set(found))
    for key in healed:
        problems.append(f"{key}: now within the limits; remove it from {BASELINE.name}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
