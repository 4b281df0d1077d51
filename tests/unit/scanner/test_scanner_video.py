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

import cv2
import numpy as np
import pytest
import zxingcpp
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

from celltrail_shared.identifiers import Coi, Giai
from labels.model import AssetTag, BagLabel, Label
from scanner.camera import Source, SourceKind
from scanner.decode import decode
from scanner.output import Reporter
from scanner.parse import Parsed, interpret
from scanner.pipeline import Frame, FrameProcessor
from scanner.roi import RoiTracker
from scanner.session import SessionOptions, run_session
from scanner.verdict import ExitCode
from scanner.workflow import Mode, is_wristband_symbol

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


# ------------------------------------------------------------------------------------------- issue 19


def _bag_without_din(coi: Coi = COI_A) -> np.ndarray:
    label = bag(coi)
    return label_image(BagLabel(coi=label.coi, unit=label.unit, product=label.product, expiry=label.expiry))


def _pan_x(i: int) -> float:
    """The bag's centre: whole in view (frames 0-7), panned right until only its COI Code 128 is in view
    (frames 12-39, 2.8 s: longer than the debounce window), back (frames 40-49)."""
    if i < 8:
        return 640.0
    if i < 12:
        return 640.0 + (i - 7) * 105
    if i < 40:
        return 1160.0 + 8 * ((i // 4) % 2)
    return max(640.0, 1160.0 - (i - 39) * 130)


@pytest.fixture(scope="module")
def bag_pan_video(media: Path) -> Path:
    """1280x720: a single bag label (no DIN), no wristband anywhere. Its COI Code 128 is alone in view for
    2.8 s while the QR code with its unit is out of frame on the right."""
    image = _bag_without_din()
    frames = [
        compose(HD, [Placement(image, _pan_x(i), 380, scale=1.0, angle=1.0)], blur=0.4, noise=2, seed=i)
        for i in range(50)
    ]
    return write_video(media / "bag-pan.avi", frames, FPS)


def test_a_bag_only_pan_never_matches(bag_pan_video: Path, tmp_path: Path) -> None:
    code, reporter = _run(bag_pan_video, Mode.BEDSIDE_VERIFY, tmp_path)

    # The COI Code 128 was read alone (the case of the issue), and again and again...
    coi_alone = [e["frame"] for e in reporter.of("code") if e["id"] == "coi:CHG123426A1B2C3"]
    assert coi_alone
    # ...but a bare COI never counts as a wristband: the bag only asks for one.
    verdicts = [(e["level"], e["message"]) for e in reporter.of("verdict")]
    assert verdicts
    assert all(level == "info" for level, _ in verdicts), verdicts
    assert all("wristband first" in message for _, message in verdicts)
    assert code is ExitCode.NOTHING


def _disagreeing_bag(qr_coi: Coi, code_coi: Coi) -> np.ndarray:
    """A bag label of ``qr_coi`` whose COI Code 128 says ``code_coi`` (a misprint, or how a misread looks)."""
    image = label_image(bag(qr_coi)).copy()
    other = label_image(bag(code_coi))
    x0, y0, x1, y1 = symbol_box(other, code_coi.barcode)
    image[y0 - 4 : y1 + 4, x0 - 30 : x1 + 30] = other[y0 - 4 : y1 + 4, x0 - 30 : x1 + 30]
    return image


@pytest.mark.parametrize("wristband_coi", [COI_A, COI_B])
def test_symbols_that_disagree_on_one_label_give_neither_match_nor_stop(
    wristband_coi: Coi, media: Path, tmp_path: Path
) -> None:
    """Wristband first, then a bag whose QR code says COI A and whose COI Code 128 says COI B."""
    band, bad_bag = _wristband_part(wristband_coi), _disagreeing_bag(COI_A, COI_B)
    frames = []
    for i in range(30):
        if i < 10:
            placement = Placement(band, 600 + 4 * i, 330, scale=0.8, angle=2)
        else:
            placement = Placement(bad_bag, 620 + 3 * (i - 10), 380, scale=0.9, angle=-3 + 0.3 * (i - 10))
        frames.append(compose(HD, [placement] if i < 10 or i >= 13 else [], blur=0.5, noise=3, seed=i))
    video = write_video(media / f"disagree-{wristband_coi.sequence}.avi", frames, FPS)

    code, reporter = _run(video, Mode.BEDSIDE_VERIFY, tmp_path)

    ids = {e["id"] for e in reporter.of("code")}
    assert {"unit:CHG123426A1B2C3-PRC-01", f"coi:{COI_B.value}"} <= ids
    levels = [e["level"] for e in reporter.of("verdict")]
    assert "ok" not in levels
    assert "stop" not in levels
    assert any("disagree" in e["message"] for e in reporter.of("verdict"))
    assert code is ExitCode.NOTHING


def _matrix_frames(label: Label, scale: float) -> list[np.ndarray]:
    image = label_image(label)
    return [
        compose(
            HD,
            [Placement(image, 560 + 6 * i, 360 - 2 * i, scale=scale, angle=4 + 0.5 * i)],
            blur=0.5,
            noise=3,
            seed=i,
        )
        for i in range(20)
    ]


@pytest.mark.parametrize(
    ("label", "scale", "prefix"),
    [
        # 203 dpi: the asset tag's 0.5 mm modules are 4 dots, the shipping label's 0.8 mm ones 6 dots.
        (AssetTag(asset=Giai.build("7612345", "SHIPPER0042")), 0.5, "]d28004"),
        (shipment(), 1 / 3, "]d200"),
    ],
    ids=["asset tag", "shipment label"],
)
def test_data_matrix_at_2_px_per_module_reads_at_least_as_often_as_zxing_cpp_alone(
    label: Label, scale: float, prefix: str
) -> None:
    processor = FrameProcessor()
    ours = alone = 0
    for i, frame in enumerate(_matrix_frames(label, scale)):
        decoded = processor.process(Frame(i, i / FPS, frame))
        ours += any(d.text.startswith(prefix) for d in decoded.detections)
        reference = zxingcpp.read_barcodes(frame)  # zxing-cpp alone, every option at its default
        alone += any(r.format == zxingcpp.BarcodeFormat.DataMatrix for r in reference)
    assert alone >= 15  # the frames are readable...
    assert ours >= alone  # ...and the scanner reads them at least as often (blurred first: 0-4 of 20)


def test_an_inverted_qr_code_is_read() -> None:
    """A wristband printed light on dark: its QR code is read in every frame, and identifies it."""
    inverted = np.ascontiguousarray(255 - _wristband_part(COI_A))
    frames = [
        compose(
            HD, [Placement(inverted, 600 + 5 * i, 360, angle=3)], blur=0.5, noise=3, seed=i, background=200
        )
        for i in range(10)
    ]
    processor = FrameProcessor()
    for i, frame in enumerate(frames):
        texts = {d.text for d in processor.process(Frame(i, i / FPS, frame)).detections}
        assert f"CT1:COI:{COI_A.value}" in texts, i
    # The symbol, not the text, identifies the wristband: the inverted QR code does.
    (qr,) = [d for d in decode(frames[0]) if d.symbology == "qr"]
    parsed = interpret(qr)
    assert isinstance(parsed, Parsed)
    assert is_wristband_symbol(parsed)


def _drug_codes() -> list[np.ndarray]:
    """A drug's GS1 Data Matrix (GTIN, lot, expiry) and a plain Code 128 with a GTIN, as on a box."""
    matrix = zxingcpp.create_barcode(
        "(01)09504000059101(10)ABC123(17)261231", zxingcpp.BarcodeFormat.DataMatrix, gs1=True
    )
    plain = zxingcpp.create_barcode("0109504000059101", zxingcpp.BarcodeFormat.Code128)
    return [
        np.asarray(
            cv2.copyMakeBorder(
                np.asarray(code.to_image(scale=scale), np.uint8),
                20,
                20,
                20,
                20,
                cv2.BORDER_CONSTANT,
                value=255,
            ),
            np.uint8,
        )
        for code, scale in ((matrix, 6), (plain, 3))
    ]


def test_a_foreign_gs1_code_is_ignored_at_the_bedside(media: Path, tmp_path: Path) -> None:
    """The match video's wristband and bag, with a drug's Data Matrix and GTIN Code 128 on the bedside
    table in view throughout: ignored, and the verification still completes."""
    band, bag_image = _wristband_part(COI_A), label_image(bag(COI_A))
    matrix, plain = _drug_codes()
    frames = []
    for i in range(35):
        placements = [Placement(matrix, 150, 150), Placement(plain, 1000, 620)]
        if i < 15:
            placements.append(Placement(band, 600 + 4 * i, 330, scale=0.8, angle=2))
        elif i >= 20:
            placements.append(Placement(bag_image, 640 + 3 * (i - 20), 330, scale=0.9, angle=-3))
        frames.append(compose(HD, placements, blur=0.5, noise=3, seed=i))
    video = write_video(media / "foreign-gs1.avi", frames, FPS)

    code, reporter = _run(video, Mode.BEDSIDE_VERIFY, tmp_path)

    ignored = {e["text"] for e in reporter.of("ignored")}
    assert "]d20109504000059101" + "10ABC123\x1d17261231" in ignored or any(
        text.startswith("]d201095040000591") for text in ignored
    )
    assert any("0109504000059101" in text for text in ignored if not text.startswith("]d2"))
    assert reporter.of("rejected") == []
    assert [e["level"] for e in reporter.of("verdict")] == ["info", "ok"]
    assert code is ExitCode.OK


def _dark(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dim room: about a tenth of the light, and the sensor noise that comes with the gain."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    dark = gray * 0.1 + 6 + rng.normal(0, 6, gray.shape).astype(np.float32)
    return np.asarray(dark.clip(0, 255), np.uint8)


def test_in_dark_frames_a_region_that_finds_nothing_for_a_second_falls_back_to_the_whole_frame() -> None:
    """1920x1080, dark: the whole frame (shrunk to 1280 px, which averages the noise away) reads the
    bag, the region around it at full resolution does not."""
    image = label_image(bag())
    rng = np.random.default_rng(0)
    frames = [
        _dark(compose((1920, 1080), [Placement(image, 900 + 2 * i, 540, scale=1.2, angle=2)]), rng)
        for i in range(30)
    ]
    read: dict[str, list[bool]] = {}
    for name, tracker in (
        ("fallback", RoiTracker()),
        ("no fallback", RoiTracker(fallback_seconds=float("inf"))),
    ):
        processor = FrameProcessor(tracker)
        read[name] = [bool(processor.process(Frame(i, i / FPS, f)).detections) for i, f in enumerate(frames)]
    # Without the fallback about one frame in four is read: the periodic whole-frame passes.
    assert sum(read["no fallback"]) <= 12
    assert sum(read["no fallback"][20:]) <= 3
    # With it, once the region passes have found nothing for a second (the last region hit was in frame
    # 9), every frame is read: the whole frame, each time.
    assert all(read["fallback"][20:])
