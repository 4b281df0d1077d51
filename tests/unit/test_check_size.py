"""The size check of `make lint` finds a module over the line limit and a function over the complexity
limit, and the tree has nothing over the limits that its baseline does not list."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _checker():  # the script is not a package module: load it by path
    spec = importlib.util.spec_from_file_location("check_size", ROOT / "scripts" / "check_size.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_long_module_and_a_branchy_function_are_found(tmp_path):
    checker = _checker()
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "long.py").write_text("x = 1\n" * (checker.MAX_LINES + 1))
    branches = "".join(f"    if x == {n}:\n        return {n}\n" for n in range(checker.MAX_COMPLEXITY))
    (package / "branchy.py").write_text(f"def pick(x):\n{branches}    return -1\n")
    (package / "fine.py").write_text("def pick(x):\n    return x\n")
    found = checker.measure(tmp_path, ("pkg",))
    assert found == {"pkg/long.py": checker.MAX_LINES + 1, "pkg/branchy.py::pick": checker.MAX_COMPLEXITY + 1}


def test_nothing_in_the_tree_is_over_the_limits_unlisted_or_grown():
    checker = _checker()
    allowed = checker.read_baseline()
    grown = {k: v for k, v in checker.measure().items() if v > allowed.get(k, 0)}
    assert grown == {}
