"""``celltrail label``: arguments, exit codes, and delivery to a file, a raw TCP port and CUPS."""

import argparse
import os
import socket
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pyzbar import pyzbar

from labels.cli import configure_parser, run
from labels.printers import PrinterError, cups_command, parse_host_port, send_raw
from labels.stock import BAG_4X2

BAG_ARGS = [
    "bag",
    "--coi",
    "&/CHG123426A1B2C3",
    "--unit",
    "PRC-01",
    "--din",
    "=G12341765432170",
    "--product",
    "Autologous CAR-T cells",
    "--expiry",
    "2026-03-14T23:59Z",
]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="celltrail label")
    configure_parser(parser)
    return parser.parse_args(argv)


def test_bag_png_to_file_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "bag.png"
    assert run(parse([*BAG_ARGS, "--format", "png", "--out", str(out)])) == 0
    contents = {s.data.decode() for s in pyzbar.decode(np.asarray(Image.open(out).convert("L")))}
    assert {"&/CHG123426A1B2C3", "=G12341765432170", "CT1:UNIT:CHG123426A1B2C3-PRC-01"} <= contents


@pytest.mark.parametrize(("suffix", "magic"), [(".pdf", b"%PDF-"), (".zpl", b"^XA"), (".png", b"\x89PNG")])
def test_format_follows_the_output_extension(tmp_path: Path, suffix: str, magic: bytes) -> None:
    out = tmp_path / f"label{suffix}"
    assert run(parse(["wristband", "--coi", "CH G1234 26 A1B2C3 [4]", "--out", str(out)])) == 0
    assert out.read_bytes().startswith(magic)


def test_zpl_defaults_to_203_dpi(tmp_path: Path) -> None:
    out = tmp_path / "bag.zpl"
    assert run(parse([*BAG_ARGS, "--out", str(out)])) == 0
    assert b"^PW812\n^LL609" in out.read_bytes()  # 4 x 3 in, the bag default


def test_every_kind_renders(tmp_path: Path) -> None:
    commands = [
        [
            *("shipment", "--shipment", "SHP-2026-000123", "--from", "Site A", "--to", "City Hospital"),
            *("--profile", "cryo", "--sscc", "(00)106141411234567897", "--logger", "LGR-T4X9002"),
            *("--mark", "this-way-up", "--mark", "do-not-xray", "--temperature", "≤ −120 °C"),
        ],
        ["asset", "--giai", "(8004)0614141LN2-7", "--description", "LN2 dry shipper"],
        ["asset", "--giai", "0614141LN2-7"],
        ["asset", "--logger", "LGR-T4X9002"],
        [
            *("bag", "--unit", "CHG123426A1B2C3-APH-01", "--product", "Apheresis", "--expiry", "2026-03-14"),
            *("--storage-temp", "2 °C to 8 °C", "--stock", "bag-4x3"),
        ],
    ]
    for index, argv in enumerate(commands):
        out = tmp_path / f"{index}.pdf"
        assert run(parse([*argv, "--out", str(out)])) == 0, argv
        assert out.read_bytes().startswith(b"%PDF-")


def test_standard_output(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert run(parse(["wristband", "--coi", "&/CHG123426A1B2C3", "--format", "zpl", "--out", "-"])) == 0
    assert capsysbinary.readouterr().out.startswith(b"^XA")


def test_unit_of_another_coi_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*BAG_ARGS, "--out", str(tmp_path / "x.png")]
    argv[argv.index("PRC-01")] = "CHG123426A1B2C4-PRC-01"
    assert run(parse(argv)) == 2
    assert "belongs to COI CHG123426A1B2C4, not CHG123426A1B2C3" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_short_unit_needs_coi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "bag",
        "--unit",
        "PRC-01",
        "--product",
        "p",
        "--expiry",
        "2026-03-14",
        "--out",
        str(tmp_path / "x"),
    ]
    assert run(parse(argv)) == 2
    assert "needs --coi" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["wristband", "--coi", "&/CHG123426A1B2C", "--out", "x"],
            "COI must be 15 characters after '&/', got 14",
        ),
        (["wristband", "--coi", "CH G1234 26 A1B2C3 [5]", "--out", "x"], "check character is '5'"),
        ([*BAG_ARGS[:6], "=G12341765432171", *BAG_ARGS[7:], "--out", "x"], "flags 71 imply 'B'"),
        ([*BAG_ARGS[:-1], "14/03/2026", "--out", "x"], "expiry must be ISO 8601"),
        (["asset", "--logger", "LGR-abc", "--out", "x"], "A-Z, 0-9"),
        (
            ["wristband", "--coi", "&/CHG123426A1B2C3"],
            "one of the arguments --out --print --cups is required",
        ),
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_png_is_not_sent_to_a_raw_printer_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(parse(["wristband", "--coi", "&/CHG123426A1B2C3", "--format", "png", "--print", "h:9100"])) == 2
    )
    assert "not PNG" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- printers


class OnePrinter:
    """A local raw-port printer that accepts one job."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        connection, _ = self.server.accept()
        with connection:
            while chunk := connection.recv(65536):
                self.received += chunk
        self.server.close()


def test_print_sends_zpl_to_the_raw_port() -> None:
    printer = OnePrinter()
    argv = [
        "wristband",
        "--coi",
        "&/CHG123426A1B2C3",
        "--format",
        "zpl",
        "--print",
        f"127.0.0.1:{printer.port}",
    ]
    assert run(parse(argv)) == 0
    printer.thread.join(timeout=10)
    assert printer.received.startswith(b"^XA")
    assert printer.received.rstrip().endswith(b"^XZ")


def test_unreachable_printer_is_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    argv = ["wristband", "--coi", "&/CHG123426A1B2C3", "--format", "zpl", "--print", f"127.0.0.1:{port}"]
    assert run(parse(argv)) == 1
    assert f"could not send label to 127.0.0.1:{port}" in capsys.readouterr().err


def test_send_raw_raises_printer_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(PrinterError):
        send_raw(f"127.0.0.1:{port}", b"^XA^XZ", timeout=2)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("zebra1", ("zebra1", 9100)),
        ("zebra1:9101", ("zebra1", 9101)),
        ("10.0.0.5:9100", ("10.0.0.5", 9100)),
        ("[fe80::1]:9100", ("fe80::1", 9100)),
        ("[fe80::1]", ("fe80::1", 9100)),
    ],
)
def test_parse_host_port(target: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(target) == expected


@pytest.mark.parametrize("target", [":9100", "zebra1:0", "zebra1:http", "[fe80::1", "[fe80::1]9100"])
def test_parse_host_port_rejects(target: str) -> None:
    with pytest.raises(ValueError, match="printer"):
        parse_host_port(target)


def _fake_lp(tmp_path: Path, exit_code: int = 0) -> Path:
    """An ``lp`` on PATH that records its arguments and the job."""
    script = tmp_path / "bin" / "lp"
    script.parent.mkdir()
    script.write_text(
        f'#!/bin/sh\necho "$@" > "{tmp_path}/args"\ncat > "{tmp_path}/job"\n'
        f'echo "lp: queue trouble" >&2\nexit {exit_code}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_cups_queue_gets_raw_zpl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lp = _fake_lp(tmp_path)
    monkeypatch.setenv("PATH", f"{lp.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    assert run(parse(["wristband", "--coi", "&/CHG123426A1B2C3", "--format", "zpl", "--cups", "ward7"])) == 0
    assert (tmp_path / "args").read_text().split() == ["-d", "ward7", "-o", "raw"]
    assert (tmp_path / "job").read_bytes().startswith(b"^XA")


def test_cups_pdf_names_the_media_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lp = _fake_lp(tmp_path)
    monkeypatch.setenv("PATH", str(lp.parent))
    assert cups_command("ward7", "pdf", BAG_4X2) == [
        str(lp),
        "-d",
        "ward7",
        "-o",
        "media=Custom.101.6x50.8mm",
    ]


def test_cups_failure_is_exit_status_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lp = _fake_lp(tmp_path, exit_code=1)
    monkeypatch.setenv("PATH", str(lp.parent))
    assert run(parse(["wristband", "--coi", "&/CHG123426A1B2C3", "--format", "pdf", "--cups", "ward7"])) == 1
    assert "queue trouble" in capsys.readouterr().err


def test_missing_lp_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrinterError, match="'lp' is not installed"):
        cups_command("ward7", "pdf", None)
