"""``celltrail scan`` in-process: login, scanning images, the offline queue, --status and --flush."""

from __future__ import annotations

import io
import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import zxingcpp
from scanner_media import Placement, bag, compose, label_image, shipment, wristband, write_video
from scanner_standin import Refusal, Running, StandIn

from scanner import cli
from scanner.config import CONFIG_FILE, ScannerConfig, config_dir, load_config, save_config

PASSWORD = "pw-courier-1"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "config"
    monkeypatch.setenv("CELLTRAIL_SCANNER_CONFIG_DIR", str(directory))
    monkeypatch.delenv("CELLTRAIL_BACKEND_URL", raising=False)
    return directory


@pytest.fixture
def backend() -> Iterator[Running]:
    running = Running(StandIn(users={"courier": PASSWORD}))
    yield running
    running.stop()


def _image(tmp_path: Path, name: str, image: np.ndarray) -> str:
    path = tmp_path / name
    cv2.imwrite(str(path), image)
    return str(path)


def _shipment_photo(tmp_path: Path, sequence: int = 123) -> str:
    return _image(
        tmp_path,
        f"shipment-{sequence}.png",
        compose((900, 1300), [Placement(label_image(shipment(sequence)), 450, 650)]),
    )


def _run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = "") -> tuple[int, list[dict[str, Any]]]:
    capsys.readouterr()
    if stdin:
        import sys

        old = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            code = cli.main(list(argv))
        finally:
            sys.stdin = old
    else:
        code = cli.main(list(argv))
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _login(capsys: pytest.CaptureFixture[str], url: str) -> int:
    code, _ = _run(
        capsys,
        "login",
        "--backend",
        url,
        "--username",
        "courier",
        "--password-stdin",
        "--json",
        stdin=PASSWORD + "\n",
    )
    return code


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ----------------------------------------------------------------------------------------- config


def test_the_config_directory_follows_the_override_then_xdg(tmp_path: Path) -> None:
    assert config_dir({"CELLTRAIL_SCANNER_CONFIG_DIR": "/x/y"}) == Path("/x/y")
    assert config_dir({"XDG_CONFIG_HOME": "/cfg"}) == Path("/cfg/celltrail")
    assert config_dir({}).name == "celltrail"


def test_the_token_file_is_private_and_replaced_atomically(tmp_path: Path) -> None:
    path = save_config(tmp_path / "c", ScannerConfig(backend="http://b", token="secret"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)
    save_config(tmp_path / "c", ScannerConfig(backend="http://b", token="other"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(tmp_path / "c").token == "other"
    assert [p.name for p in path.parent.iterdir()] == [CONFIG_FILE]
    path.write_text("{not json")
    with pytest.raises(ValueError, match="log in again"):
        load_config(tmp_path / "c")


# ----------------------------------------------------------------------------------------- login


def test_login_saves_the_token_for_later_scans(
    config: Path, backend: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    code, events = _run(
        capsys,
        "login",
        "--backend",
        backend.url + "/",
        "--username",
        "courier",
        "--password-stdin",
        "--json",
        stdin=PASSWORD + "\n",
    )

    assert code == 0
    assert events[0]["event"] == "login"
    assert events[0]["sites"] == ["CRX-ZRH"]
    saved = load_config(config)
    assert saved.backend == backend.url
    assert saved.token in backend.standin.tokens
    assert stat.S_IMODE((config / CONFIG_FILE).stat().st_mode) == 0o600


def test_a_failed_login_exits_3_and_saves_nothing(
    config: Path, backend: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _run(
        capsys,
        "login",
        "--backend",
        backend.url,
        "--username",
        "courier",
        "--password-stdin",
        stdin="wrong\n",
    )
    assert code == 3
    assert not (config / CONFIG_FILE).exists()


# ----------------------------------------------------------------------------------------- scanning


def test_a_pickup_is_recorded_and_the_site_defaults_to_the_users_only_site(
    config: Path, backend: Running, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _login(capsys, backend.url) == 0
    code, events = _run(capsys, "--image", _shipment_photo(tmp_path), "--mode", "pickup", "--json")

    assert code == 0
    (received,) = backend.standin.events
    assert received["action"] == "pickup"
    assert received["site"] == "CRX-ZRH"
    assert received["codes"] in (["SHP-2026-000123"], ["CT1:SHP:SHP-2026-000123"])
    assert [e["event"] for e in events if e["event"] in ("queued", "sent")] == ["queued", "sent"]
    assert [e["level"] for e in events if e["event"] == "verdict"] == ["ok"]


def test_a_refusal_shows_stop_with_the_backends_detail(
    config: Path, backend: Running, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    backend.standin.refuse["SHP-2026-000123"] = Refusal(409, "wrong_site", "shipment is not at CRX-ZRH")
    backend.standin.refuse["CT1:SHP:SHP-2026-000123"] = backend.standin.refuse["SHP-2026-000123"]
    _login(capsys, backend.url)
    code, events = _run(capsys, "--image", _shipment_photo(tmp_path), "--mode", "pickup", "--json")

    assert code == 1
    (stop,) = [e for e in events if e["event"] == "verdict"]
    assert stop["level"] == "stop"
    assert "wrong_site" in stop["message"]
    assert stop["detail"] == "shipment is not at CRX-ZRH"
    code, events = _run(capsys, "--status", "--json")
    assert code == 0  # refused is final: nothing left to send
    assert [e["event"] for e in events] == ["status", "refused"]


def test_without_login_scans_stay_queued_and_the_exit_says_log_in(
    config: Path, backend: Running, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, events = _run(
        capsys,
        "--image",
        _shipment_photo(tmp_path),
        "--mode",
        "pickup",
        "--site",
        "CRX-ZRH",
        "--backend",
        backend.url,
        "--json",
    )
    assert code == 3
    assert any(e["event"] == "verdict" and "log in" in e["message"] for e in events)
    assert _run(capsys, "--status", "--json")[0] == 5

    _login(capsys, backend.url)
    code, events = _run(capsys, "--flush", "--json")
    assert code == 0
    assert len(backend.standin.accepted_keys()) == 1


def test_offline_scans_are_queued_listed_and_flushed_later(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    standin = StandIn(users={"courier": PASSWORD})
    running = Running(standin, port)
    _login(capsys, url)
    running.stop()  # the backend goes away

    keys = []
    for sequence in (123, 124):
        code, events = _run(
            capsys,
            "--image",
            _shipment_photo(tmp_path, sequence),
            "--mode",
            "pickup",
            "--json",
            "--send-timeout",
            "2",
        )
        assert code == 5
        keys += [e["idempotency_key"] for e in events if e["event"] == "queued"]
        assert [e["level"] for e in events if e["event"] == "verdict"] == ["wait"]
    code, events = _run(capsys, "--status", "--json")
    assert code == 5
    assert [(e["event"], e["idempotency_key"]) for e in events[1:]] == [("pending", k) for k in keys]
    assert "unreachable" in events[1]["last_error"]  # the oldest was tried; the next waits behind it

    running = Running(standin, port)  # back, with the same state (tokens)
    try:
        code, events = _run(capsys, "--flush", "--json")
        assert code == 0
        assert standin.accepted_keys() == keys
        assert _run(capsys, "--status", "--json")[0] == 0
        assert _run(capsys, "--flush", "--json")[0] == 0
        assert standin.accepted_keys() == keys
    finally:
        running.stop()


def test_a_look_alike_code_stops_with_its_reason_when_read_twice(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    symbol = zxingcpp.create_barcode("=G12341765432171", zxingcpp.BarcodeFormat.Code128)  # flags 71, check A
    image = cv2.copyMakeBorder(
        np.asarray(symbol.to_image(scale=3), np.uint8), 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=255
    )
    frame = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    video = write_video(tmp_path / "din.avi", [frame] * 3, 10.0)
    code, events = _run(capsys, "--video", str(video), "--mode", "bedside-verify", "--json")

    assert code == 1
    (rejected,) = [e for e in events if e["event"] == "rejected"]
    assert rejected["field"] == "din.flags"
    assert "imply 'B'" in rejected["reason"]
    (stop,) = [e for e in events if e["event"] == "verdict"]
    assert stop["level"] == "stop"
    assert stop["frame"] == 1  # the second frame that read it the same way

    # One read (a still) is reported but does not stop the bedside: it may be a misread.
    code, events = _run(
        capsys, "--image", _image(tmp_path, "din.png", image), "--mode", "bedside-verify", "--json"
    )
    assert code == 4
    assert [e["event"] for e in events if e["event"] in ("rejected", "verdict")] == ["rejected"]


def test_bedside_verify_never_completes_on_a_still(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    band = _image(
        tmp_path, "band.png", compose((2100, 300), [Placement(label_image(wristband()), 1050, 150)])
    )
    code, events = _run(capsys, "--image", band, "--mode", "bedside-verify", "--json")
    assert code == 4  # verification incomplete: only the wristband
    both = compose(
        (2100, 800), [Placement(label_image(wristband()), 1050, 150), Placement(label_image(bag()), 600, 550)]
    )
    code, events = _run(
        capsys, "--image", _image(tmp_path, "both.png", both), "--mode", "bedside-verify", "--json"
    )
    # Both labels, but each must be read in two frames: a still is one.
    assert code == 4
    assert [e for e in events if e["event"] == "verdict"] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--image", "x.png"], "--mode"),
        (["--image", "x.png", "--mode", "pickup", "--site", "S"], "no backend"),
        (["--image", "x.png", "--mode", "pickup", "--backend", "http://b"], "--site"),
        (["--image", "x.png", "--mode", "handover", "--backend", "http://b", "--site", "S"], "--handover-to"),
        (["--image", "missing.png", "--mode", "bedside-verify"], "no such image"),
        (["login", "--username", "u", "--password-stdin"], "--backend"),
    ],
)
def test_usage_errors_exit_2_with_a_reason(
    config: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_status_of_a_fresh_install(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "--status", "--json") == (
        0,
        [{"event": "status", "pending": 0, "accepted": 0, "refused": 0}],
    )


def test_scanning_a_label_again_offline_in_a_new_session_queues_nothing_new(
    config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    standin = StandIn(users={"courier": PASSWORD})
    running = Running(standin, port)
    _login(capsys, url)
    running.stop()  # the backend goes away

    photo = _shipment_photo(tmp_path)
    runs = []
    for _ in range(3):  # three sessions, one after the other, the same label
        code, events = _run(capsys, "--image", photo, "--mode", "pickup", "--json", "--send-timeout", "1")
        assert code == 5  # saved, not yet confirmed
        runs.append(events)
    (queued,) = [e["idempotency_key"] for e in runs[0] if e["event"] == "queued"]
    for events in runs[1:]:
        assert [e for e in events if e["event"] == "queued"] == []
        (again,) = [e for e in events if e["event"] == "already-queued"]
        assert again["idempotency_key"] == queued
        assert [e["message"] for e in events if e["event"] == "verdict"] == [
            "already saved: pickup shipment SHP-2026-000123"
        ]
    code, events = _run(capsys, "--status", "--json")
    assert [(e["event"], e["idempotency_key"]) for e in events[1:]] == [("pending", queued)]
    # Another action on the same label is another scan.
    _run(
        capsys,
        "--image",
        photo,
        "--mode",
        "handover",
        "--handover-to",
        "pharmacist",
        "--json",
        "--send-timeout",
        "1",
    )
    assert _run(capsys, "--status", "--json")[1][0]["pending"] == 2

    running = Running(standin, port)
    try:
        assert _run(capsys, "--flush", "--json")[0] == 0
        assert [(e["action"], e["outcome"]) for e in standin.events] == [
            ("pickup", "accepted"),
            ("handover", "accepted"),
        ]
    finally:
        running.stop()
