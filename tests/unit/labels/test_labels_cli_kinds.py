"""``celltrail label`` for a clinical trial's bag and wristband and a biobank sample's tube label: the
same templates as the API's labels (the investigational statement, the 4 x 4 in trial bag, the 2 x 1 in
sample label), read back from the file the CLI writes."""

import argparse
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image
from pyzbar import pyzbar

from labels.cli import configure_parser, run

TRIAL_ARGS = [
    *("--trial", "2024-512345-12-00", "--protocol", "CARTALPHA-01", "--trial-site", "CH-03"),
    *("--subject", "03-0017", "--sponsor", "Celltrail Academic Network"),
]
TRIAL_BAG = [
    *("bag", "--unit", "CHG123426A1B2C3-PRC-01", "--product", "CAR-T (investigational)"),
    *("--expiry", "2026-03-14", "--lot", "L2026-0042", "--volume", "68 mL"),
]
STATEMENT = "FOR CLINICAL TRIAL USE ONLY"
IDENTIFIERS = (
    "TRIAL 2024-512345-12-00 PROTOCOL CARTALPHA-01 SUBJECT 03-0017 SITE CH-03 SPONSOR Celltrail "
    "Academic Network"
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="celltrail label")
    configure_parser(parser)
    return parser.parse_args(argv)


def pdf_text(path: Path) -> tuple[str, tuple[float, float]]:
    """The words of the PDF's page (white space folded) and its size in inches."""
    document = pdfium.PdfDocument(path.read_bytes())
    page = document[0]
    text = " ".join(page.get_textpage().get_text_range().split())
    width, height = page.get_size()
    return text, (round(width / 72, 2), round(height / 72, 2))


def test_a_trial_bag_carries_the_statement_on_4x4_stock(tmp_path: Path) -> None:
    out = tmp_path / "bag.pdf"
    assert run(parse([*TRIAL_BAG, *TRIAL_ARGS, "--out", str(out)])) == 0
    text, size = pdf_text(out)
    assert STATEMENT in text
    assert IDENTIFIERS in text
    assert "FOR AUTOLOGOUS USE ONLY" in text
    assert size == (4.0, 4.0)


def test_a_trial_bag_zpl_is_4x4_at_203_dpi(tmp_path: Path) -> None:
    out = tmp_path / "bag.zpl"
    assert run(parse([*TRIAL_BAG, *TRIAL_ARGS, "--out", str(out)])) == 0
    assert b"^PW812\n^LL812" in out.read_bytes()


def test_an_ordinary_bag_has_no_statement(tmp_path: Path) -> None:
    out = tmp_path / "bag.pdf"
    assert run(parse([*TRIAL_BAG, "--out", str(out)])) == 0
    text, size = pdf_text(out)
    assert STATEMENT not in text
    assert size == (4.0, 3.0)


def test_a_trial_subjects_wristband_carries_the_statement(tmp_path: Path) -> None:
    out = tmp_path / "band.pdf"
    assert run(parse(["wristband", "--coi", "&/CHG123426A1B2C3", *TRIAL_ARGS, "--out", str(out)])) == 0
    text, _size = pdf_text(out)
    assert STATEMENT in text
    assert IDENTIFIERS in text


def test_a_trial_subjects_wristband_refuses_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["wristband", "--coi", "&/CHG123426A1B2C3", *TRIAL_ARGS, "--patient-name", "Anna Muster"]
    assert run(parse([*argv, "--out", str(tmp_path / "band.pdf")])) == 2
    assert "subject identifier, not patient identity" in capsys.readouterr().err
    assert not (tmp_path / "band.pdf").exists()


def test_a_partial_trial_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*TRIAL_BAG, "--trial", "2024-512345-12-00", "--subject", "03-0017"]
    assert run(parse([*argv, "--out", str(tmp_path / "bag.pdf")])) == 2
    assert "missing --protocol, --trial-site, --sponsor" in capsys.readouterr().err


def test_a_trial_bag_on_4x3_stock_is_refused_not_shortened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every trial field at its longest, in the widest letter (the 4 x 4 in stock holds it).
    longest = [
        *("--trial", "2024-512345-12-00", "--protocol", "W" * 30, "--trial-site", "W" * 10),
        *("--subject", "W" * 20, "--sponsor", "W" * 40),
    ]
    argv = [*TRIAL_BAG, "--product-code", "S1395V00", *longest]
    assert run(parse([*argv, "--out", str(tmp_path / "bag.pdf")])) == 0
    argv = [*argv, "--stock", "bag-4x3"]
    assert run(parse([*argv, "--out", str(tmp_path / "bag.pdf")])) == 2
    assert "does not fit" in capsys.readouterr().err


def test_a_sample_label_reads_back(tmp_path: Path) -> None:
    png = tmp_path / "tube.png"
    argv = ["sample", "--coi", "&/CHG123426A1B2C3", "--unit", "SMP-01", "--description", "Retained product"]
    assert run(parse([*argv, "--trial", "2024-512345-12-00", "--dpi", "600", "--out", str(png)])) == 0
    codes = {s.data.decode() for s in pyzbar.decode(np.asarray(Image.open(png).convert("L")))}
    assert "CT1:UNIT:CHG123426A1B2C3-SMP-01" in codes
    pdf = tmp_path / "tube.pdf"
    assert run(parse([*argv, "--trial", "2024-512345-12-00", "--out", str(pdf)])) == 0
    text, size = pdf_text(pdf)
    assert "RESEARCH SAMPLE - NOT FOR HUMAN USE" in text
    assert "Retained product" in text
    assert "TRIAL 2024-512345-12-00" in text
    assert size == (2.0, 1.0)
    zpl = tmp_path / "tube.zpl"
    assert run(parse([*argv, "--out", str(zpl)])) == 0
    assert zpl.read_bytes().startswith(b"^XA")
    assert b"^PW406\n^LL203" in zpl.read_bytes()


def test_a_sample_label_needs_a_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sample", "--unit", "CHG123426A1B2C3-PRC-01", "--description", "x"]
    assert run(parse([*argv, "--out", str(tmp_path / "tube.pdf")])) == 2
    assert "is not a sample" in capsys.readouterr().err
