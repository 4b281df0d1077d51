"""Celltrail stands alone: nothing in the project reads a path outside its own tree, at run time or in
tests. Checked twice: no file names such a path, and the EPCIS tests (which once read GS1's material
from beside the repository) pass in a copy of the tree placed where nothing is beside it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Ways a file could reach out of the tree: a sibling folder by a relative path, or walking up from the
# repository's own directory. This file names them to look for them, so it is exempt.
OUTSIDE = [
    re.compile(r"\.\./shared"),
    re.compile(r"""["']shared["']\s*/"""),
    re.compile(r"""/\s*["']shared["']"""),
    re.compile(r"parents\[\d+\]\.parent\b"),
]
TEXT_SUFFIXES = {".py", ".sh", ".toml", ".yaml", ".yml", ".cfg", ".ini", ".sql", ""}


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_no_file_names_a_path_outside_the_project():
    offenders = []
    for path in tracked_files():
        if path.suffix not in TEXT_SUFFIXES or path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {p.pattern}" for p in OUTSIDE if p.search(text)]
    assert offenders == []


def test_the_epcis_tests_pass_with_nothing_beside_the_project(tmp_path):
    copy = tmp_path / "alone" / "celltrail"
    for path in tracked_files():
        target = copy / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    assert not (copy.parent / "shared").exists()
    env = {**os.environ, "PYTHONPATH": str(copy)}
    env.pop("CELLTRAIL_EPCIS_SCHEMA", None)
    where = subprocess.run(
        [sys.executable, "-c", "import backend.epcis.validate as v; print(v.default_schema_path())"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(copy), where
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/unit/reports/test_epcis_validate.py",
        ],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def _epcis_tests(tree: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "tests"], cwd=tree, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted(
        name
        for name in listed
        if "epcis" in Path(name).name and name.endswith(".py") and Path(name).name.startswith("test_")
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_clone_of_the_repository_passes_its_epcis_tests_alone(tmp_path):
    """What a user gets: `git clone` of the committed tree into an empty directory, nothing beside it,
    then the EPCIS tests (export, capture, query; a real database) run there and pass."""
    empty = tmp_path / "alone"
    empty.mkdir()
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(empty / "celltrail")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    clone = empty / "celltrail"
    assert sorted(p.name for p in empty.iterdir()) == ["celltrail"]
    tests = _epcis_tests(clone)
    # Unit and integration tests alike: a clone that had lost its fixtures or schema fails here.
    assert any(t.startswith("tests/integration/") for t in tests), tests
    assert any(t.startswith("tests/unit/") for t in tests), tests
    env = {**os.environ, "PYTHONPATH": str(clone)}
    env.pop("CELLTRAIL_EPCIS_SCHEMA", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1], run.stdout[-500:]
