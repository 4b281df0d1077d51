"""The scanner end to end on generated videos: which codes are reported, and at which frames.

Each video is made here from rendered labels (moving, rotating, blurred, partly out of frame) and
written as MJPG. The scanner runs headless on it, in-process, with the stand-in backend where a custody
mode records steps; one run goes through the ``celltrail scan`` command line with ``--json``.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scanner_media import (
    COI_A,
    COI_B,
    Placement,
    bag,
    compose,
    crop,
    label_image,
    shipment,
    symbol_box,
    wristband,
    write_video,
)
from scanner_standin import Running, StandIn

from backend.domain.identifiers import Coi
from scanner.camera import Source, SourceKind
from scanner.output import Reporter
from scanner.session import SessionOptions, run_session
from scanner.verdict import ExitCode
from scanner.workflow import Mode

FPS = 10.0
VGA = (640, 480)
HD = (1280, 720)
SHIPMENT_CODE = "SHP-2026-000123"
TOKEN = "token-for-video-tests"


def _shipment_part(sequence: int = 123) -> np.ndarray:
    """The part of a shipment label with its Code 128, QR code and SSCC Data Matrix."""
    return crop(label_image(shipment(sequence)), (40, 580, 660, 980), 10)


def _wristband_part(coi: Coi = COI_A) -> np.ndarray:
    """The end of a wristband a camera sees: a QR code and the COI Code 128."""
    image = label_image(wristband(coi))
    return crop(image, (0, 0, 880, image.shape[0]), 0)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scanner-videos")


@pytest.fixture
def backend() -> Iterator[Running]:
    running = Running(StandIn())
    running.standin.tokens.add(TOKEN)
    yield running
    running.stop()


def _run(
    video: Path, mode: Mode, tmp_path: Path, backend: Running | None = None, **options: Any
) -> tuple[ExitCode, Reporter]:
    reporter = Reporter(quiet=True)
    session_options = SessionOptions(
        mode=mode,
        site="CRX-ZRH",
        backend=backend.url if backend else None,
        token=TOKEN,
        queue_path=tmp_path / "queue.sqlite3",
        **options,
    )
    result = run_session(Source(SourceKind.VIDEO, str(video)), session_options, reporter)
    return result.exit_code, reporter


def _reports(reporter: Reporter, key: str) -> list[int]:
    return [event["frame"] for event in reporter.of("code") if event["id"] == key]


# ------------------------------------------------------------------------------------------- videos


@pytest.fixture(scope="module")
def debounce_video(media: Path) -> Path:
    """640x480: a shipment label in view for 3 s (frames 10-39), moving, rotating and blurring; gone for
    3 s; back for 1 s (frames 70-79)."""
    part = _shipment_part()
    frames = []
    for i in range(80):
        placements = []
        if 10 <= i < 40 or 70 <= i < 80:
            k = (i - 10) % 30
            placements.append(Placement(part, 300 + 3 * k, 240 - k, scale=0.75, angle=-6 + 0.4 * k))
        frames.append(compose(VGA, placements, blur=0.3 + 0.07 * (i % 10), noise=3, seed=i))
    return write_video(media / "debounce.avi", frames, FPS)


@pytest.fixture(scope="module")
def two_codes_video(media: Path) -> Path:
    """1280x720: a shipment label and a bag label side by side from the first frame, for 1 s."""
    placements = [
        Placement(_shipment_part(), 330, 360, scale=0.8, angle=3),
        Placement(label_image(bag()), 950, 360, scale=0.75, angle=-4),
    ]
    frames = [compose(HD, placements, blur=0.5, noise=2, seed=i) for i in range(10)]
    return write_video(media / "two-codes.avi", frames, FPS)


@functools.cache
def _sliding_code() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    image = label_image(shipment())
    box = symbol_box(image, SHIPMENT_CODE)
    part = crop(image, box, 24)
    return part, (24, 24, part.shape[1] - 24, part.shape[0] - 24)


def _slide(i: int, width: int) -> Placement:
    part, _ = _sliding_code()
    return Placement(part, VGA[0] + width / 2 - 12 * i, 240, scale=1.0)


@pytest.fixture(scope="module")
def sliding_video(media: Path) -> Path:
    """640x480: the shipment Code 128 alone, entering from the right edge at 12 px per frame."""
    part, _ = _sliding_code()
    frames = [compose(VGA, [_slide(i, part.shape[1])], noise=2, seed=i) for i in range(60)]
    return write_video(media / "sliding.avi", frames, FPS)


def _bedside_video(media: Path, name: str, bag_coi: Coi) -> Path:
    """1280x720: the wristband (frames 0-14), nobody (15-19), then the bag (20-34), each moving."""
    band, bag_image = _wristband_part(COI_A), label_image(bag(bag_coi))
    frames = []
    for i in range(35):
        placements = []
        if i < 15:
            placements.append(Placement(band, 560 + 4 * i, 330, scale=0.8, angle=2 - 0.3 * i))
        elif i >= 20:
            placements.append(
                Placement(bag_image, 620 + 3 * (i - 20), 380, scale=0.9, angle=-5 + 0.5 * (i - 20))
            )
        frames.append(compose(HD, placements, blur=0.6, noise=3, seed=i))
    return write_video(media / name, frames, FPS)


@pytest.fixture(scope="module")
def bedside_match_video(media: Path) -> Path:
    return _bedside_video(media, "bedside-match.avi", COI_A)


@pytest.fixture(scope="module")
def bedside_mismatch_video(media: Path) -> Path:
    return _bedside_video(media, "bedside-mismatch.avi", COI_B)


# ------------------------------------------------------------------------------------------- tests


def test_a_code_in_view_for_3s_is_reported_once_and_again_after_3s_away(
    debounce_video: Path, backend: Running, tmp_path: Path
) -> None:
    code, reporter = _run(debounce_video, Mode.PICKUP, tmp_path, backend, debounce=2.0)

    first, second = _reports(reporter, f"shipment:{SHIPMENT_CODE}")
    assert 10 <= first <= 12
    assert 70 <= second <= 72
    sscc = _reports(reporter, "sscc:076123450000001234")
    assert len(sscc) == 2
    # One pickup for the label, however often and through however many of its symbols it was seen.
    received = backend.standin.events
    assert [(e["action"], e["site"], e["outcome"]) for e in received] == [("pickup", "CRX-ZRH", "accepted")]
    assert received[0]["codes"][0] in (SHIPMENT_CODE, f"CT1:SHP:{SHIPMENT_CODE}")
    assert code is ExitCode.OK
    assert [e["level"] for e in reporter.of("verdict")] == ["ok"]


def test_a_debounce_window_longer_than_the_absence_reports_once(debounce_video: Path, tmp_path: Path) -> None:
    _, reporter = _run(debounce_video, Mode.BEDSIDE_VERIFY, tmp_path, debounce=3.5)

    assert len(_reports(reporter, f"shipment:{SHIPMENT_CODE}")) == 1


def test_two_codes_in_one_frame_are_both_reported(
    two_codes_video: Path, backend: Running, tmp_path: Path
) -> None:
    code, reporter = _run(two_codes_video, Mode.RECEIVE, tmp_path, backend)

    shipment_frames = _reports(reporter, f"shipment:{SHIPMENT_CODE}")
    unit_frames = _reports(reporter, "unit:CHG123426A1B2C3-PRC-01")
    assert shipment_frames == unit_frames == [0]
    # The shipment is recorded first, so the bag in the same frame is received into it.
    received = [(e["action"], len(e["codes"])) for e in backend.standin.events]
    assert received == [("receive", 1), ("receive", 2)]
    assert backend.standin.events[1]["codes"][0] == backend.standin.events[0]["codes"][0]
    assert "CHG123426A1B2C3-PRC-01" in backend.standin.events[1]["codes"][1]
    assert code is ExitCode.OK


def test_a_code_partly_out_of_frame_is_not_reported_until_fully_visible(
    sliding_video: Path, tmp_path: Path
) -> None:
    _, reporter = _run(sliding_video, Mode.BEDSIDE_VERIFY, tmp_path)

    part, bars = _sliding_code()
    fully_visible = next(i for i in range(60) if _slide(i, part.shape[1]).inside(VGA, bars))
    with_quiet_zone = next(i for i in range(60) if _slide(i, part.shape[1]).inside(VGA))
    frames = _reports(reporter, f"shipment:{SHIPMENT_CODE}")
    assert len(frames) == 1
    assert fully_visible <= frames[0] <= with_quiet_zone + 2


def test_bedside_verify_is_ok_when_wristband_and_bag_cois_match(
    bedside_match_video: Path, tmp_path: Path
) -> None:
    code, reporter = _run(bedside_match_video, Mode.BEDSIDE_VERIFY, tmp_path)

    verdicts = [(e["level"], e["frame"]) for e in reporter.of("verdict")]
    assert verdicts[0][0] == "info"
    assert verdicts[0][1] <= 3  # the wristband's QR code identifies it at once
    assert [level for level, _ in verdicts[1:]] == ["ok"]
    assert 20 <= verdicts[1][1] <= 24
    assert code is ExitCode.OK


def test_bedside_verify_stops_on_a_coi_mismatch(bedside_mismatch_video: Path, tmp_path: Path) -> None:
    code, reporter = _run(bedside_mismatch_video, Mode.BEDSIDE_VERIFY, tmp_path)

    stops = [e for e in reporter.of("verdict") if e["level"] == "stop"]
    assert len(stops) == 1
    assert 20 <= stops[0]["frame"] <= 24
    assert COI_A.eye_readable in stops[0]["message"]
    assert COI_B.eye_readable in stops[0]["message"]
    assert not [e for e in reporter.of("verdict") if e["level"] == "ok"]
    assert code is ExitCode.STOP


def test_the_command_line_reports_json_lines_and_the_verdict_as_exit_status(
    bedside_match_video: Path, bedside_mismatch_video: Path, tmp_path: Path
) -> None:
    env = {"CELLTRAIL_SCANNER_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    outcomes = {}
    for video in (bedside_match_video, bedside_mismatch_video):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "backend.cli",
                "scan",
                "--video",
                str(video),
                "--mode",
                "bedside-verify",
                "--headless",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        events = [json.loads(line) for line in done.stdout.splitlines()]
        outcomes[video.name] = done.returncode, events

    code, events = outcomes["bedside-match.avi"]
    assert code == 0
    assert events[0]["event"] == "start"
    assert events[-1] == {**events[-1], "event": "end", "exit_code": 0, "frames": 35}
    assert {e["id"] for e in events if e["event"] == "code"} >= {
        "coi:CHG123426A1B2C3",
        "unit:CHG123426A1B2C3-PRC-01",
    }
    assert [e["level"] for e in events if e["event"] == "verdict"] == ["info", "ok"]
    code, events = outcomes["bedside-mismatch.avi"]
    assert code == 1
    assert [e["level"] for e in events if e["event"] == "verdict"] == ["info", "stop"]
