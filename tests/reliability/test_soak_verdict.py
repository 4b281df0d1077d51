"""The soak's pass/fail rule (bench/soak.py) on made-up windows: it must be able to fail."""

from __future__ import annotations

from bench.soak import Window, verdict


def _window(index: int, p99: float, backend_mb: float) -> Window:
    return Window(index, 60_000, [20.0, 40.0, p99], 5.0, p99, {"backend": backend_mb, "bridge": 60.0})


def test_steady_memory_and_latency_pass():
    windows = [_window(1, 400.0, 95.0), _window(2, 120.0, 97.0), _window(3, 150.0, 98.0)]
    assert verdict(windows, {"backend": 93.0, "bridge": 60.0}, {"backend": 99.0, "bridge": 61.0}) == []


def test_a_leak_and_a_latency_drift_fail():
    windows = [_window(1, 400.0, 95.0), _window(2, 120.0, 97.0), _window(3, 900.0, 180.0)]
    problems = verdict(windows, {"backend": 93.0, "bridge": 60.0}, {"backend": 180.0, "bridge": 61.0})
    assert any("RSS of the backend" in p for p in problems)
    assert any("ingest p99 degraded" in p for p in problems)
    assert any("API p99 degraded" in p for p in problems)
