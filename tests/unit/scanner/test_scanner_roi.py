"""Which pass each frame gets: whole frame or tracked region, and when pyzbar runs."""

from __future__ import annotations

import pytest

from scanner.decode import Detection
from scanner.geometry import Rect
from scanner.roi import Pass, RoiTracker

FRAME = Rect(0, 0, 1280, 720)


def _hit(x0: int, y0: int, x1: int, y1: int) -> list[Detection]:
    return [Detection("SHP-2026-000123", "code128", ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), "zxing")]


def _run(tracker: RoiTracker, hits: list[list[Detection]]) -> list[Pass]:
    plans = []
    for detections in hits:
        plans.append(tracker.plan(FRAME))
        tracker.update(detections, FRAME)
    return plans


def test_without_hits_every_pass_is_whole_frame_and_pyzbar_runs_every_nth() -> None:
    plans = _run(RoiTracker(full_every=4, zbar_every=3), [[]] * 7)

    assert [p.region for p in plans] == [None] * 7
    assert [p.zbar for p in plans] == [True, False, False, True, False, False, True]


def test_after_a_hit_the_region_around_it_is_decoded_with_a_whole_frame_every_nth_pass() -> None:
    tracker = RoiTracker(full_every=4, zbar_every=8, hold=8, margin_fraction=0.5, min_margin=20)
    plans = _run(tracker, [_hit(500, 300, 600, 340)] * 9)

    assert plans[0] == Pass(None, zbar=True)
    region = Rect(450, 250, 651, 391)  # the hit (101 x 41 px) grown by half its larger side
    assert plans[1] == Pass(region, zbar=True)  # small region: pyzbar runs on it every pass
    assert [p.region for p in plans] == [None, region, region, region, None, region, region, region, None]


def test_a_large_region_gets_pyzbar_only_on_its_periodic_pass() -> None:
    tracker = RoiTracker(full_every=100, zbar_every=4, zbar_area=0.35)
    plans = _run(tracker, [_hit(100, 100, 1100, 600)] * 6)

    assert all(p.region is not None for p in plans[1:])
    assert [p.zbar for p in plans] == [True, False, False, False, True, False]


def test_a_region_is_dropped_after_hold_passes_without_a_hit() -> None:
    tracker = RoiTracker(full_every=100, hold=2)
    plans = _run(tracker, [_hit(500, 300, 600, 340), [], [], [], []])

    assert [p.region is not None for p in plans] == [False, True, True, False, False]


def test_the_region_is_clipped_to_the_frame() -> None:
    tracker = RoiTracker(full_every=100)
    _run(tracker, [_hit(0, 0, 100, 50)])
    assert tracker.region is not None
    assert FRAME.contains(tracker.region)
    assert tracker.region.x0 == 0


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="full_every"):
        RoiTracker(full_every=0)
    with pytest.raises(ValueError, match="thorough_every"):
        RoiTracker(thorough_every=0)


def test_the_costly_reads_take_turns_unless_a_data_matrix_is_in_view() -> None:
    tracker = RoiTracker(full_every=100, thorough_every=3)
    hit = _hit(500, 300, 600, 340)
    matrix = [Detection("]d200076123450000001234", "datamatrix", ((500, 300), (540, 340)), "zxing")]
    plans = _run(tracker, [[], [], [], [], [], hit, hit, hit, hit, matrix, hit, hit, hit])
    # Searching: both costly reads on every third pass, the first one included.
    assert [(p.invert, p.raw_matrix) for p in plans[:6]] == [(True, True), (False, False), (False, False)] * 2
    # A label tracked: inverted reads every pass; unblurred Data Matrix every third pass...
    assert [p.invert for p in plans[6:]] == [True] * 7
    assert [p.raw_matrix for p in plans[6:10]] == [True, False, False, True]
    # ...and every pass once a Data Matrix was read.
    assert [p.raw_matrix for p in plans[10:]] == [True, True, True]


def test_when_region_passes_find_nothing_for_a_second_every_pass_reads_the_whole_frame() -> None:
    """Dark frames: the whole frame (shrunk, so less noisy) still reads the label, its region does not."""
    tracker = RoiTracker(full_every=4, hold=8, fallback_seconds=1.0)
    plans = []
    for i in range(30):
        t = i / 10
        plan = tracker.plan(FRAME, t)
        plans.append(plan)
        tracker.update(_hit(500, 300, 600, 340) if plan.region is None else [], FRAME)
    regions = [p.region is not None for p in plans]
    assert regions[:4] == [False, True, True, True]
    first_miss = 0.1
    fallen_back = next(i for i in range(30) if i / 10 >= first_miss + 1.0)
    assert not any(regions[fallen_back:])  # from then on the whole frame, every pass
    assert any(regions[:fallen_back])
    assert tracker.fallback
    # The label goes: after hold passes without a hit the tracker starts afresh, regions allowed again.
    for i in range(30, 40):
        tracker.plan(FRAME, i / 10)
        tracker.update([], FRAME)
    assert not tracker.fallback
    assert tracker.region is None
