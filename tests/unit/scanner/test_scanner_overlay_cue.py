"""What the operator sees and hears: overlay drawing, display detection, audible cues."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from scanner import cue as cue_module
from scanner.cue import Cue
from scanner.decode import Detection
from scanner.overlay import COLOURS, display_available, draw
from scanner.parse import interpret
from scanner.verdict import Level, Verdict


def test_the_overlay_outlines_codes_and_shows_the_verdict_banner() -> None:
    frame = np.full((480, 640), 200, np.uint8)
    good = interpret(
        Detection("SHP-2026-000123", "code128", ((100, 200), (300, 200), (300, 260), (100, 260)), "zxing")
    )
    bad = interpret(
        Detection("=G12341765432171", "code128", ((350, 300), (500, 300), (500, 340), (350, 340)), "zbar")
    )

    image = draw(frame, [good, bad], Verdict(Level.STOP, "REJECTED code"))

    assert image.shape == (480, 640, 3)
    assert tuple(image[5, 600]) == COLOURS[Level.STOP]  # banner
    assert tuple(image[230, 100]) == COLOURS[Level.OK]  # box edge of the accepted code
    assert tuple(image[320, 350]) == COLOURS[Level.STOP]  # box edge of the rejected one
    assert frame.shape == (480, 640)  # the frame itself is untouched


def test_no_window_without_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not display_available()
    monkeypatch.setenv("DISPLAY", ":0")
    assert not display_available()  # opencv-python-headless has no GUI backend


def test_without_a_player_or_terminal_a_cue_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cue_module.shutil, "which", lambda _: None)
    stderr = io.StringIO()
    monkeypatch.setattr(cue_module.sys, "stderr", stderr)
    cue = Cue()
    cue.play(Level.STOP)
    cue.close()
    assert stderr.getvalue() == ""


def test_a_player_gets_a_generated_tone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    played = tmp_path / "played"
    player = tmp_path / "paplay"
    player.write_text(f'#!/bin/sh\ncp "$1" {played}\n')
    player.chmod(0o755)
    monkeypatch.setattr(cue_module.shutil, "which", lambda name: str(player) if name == "paplay" else None)
    cue = Cue()
    cue.play(Level.OK)
    cue.close()  # waits for the player
    with wave.open(str(played)) as tone:
        assert tone.getframerate() == cue_module.RATE
        assert tone.getnframes() == int(cue_module.RATE * 0.12)


def test_a_broken_player_falls_back_to_the_bell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cue_module.shutil, "which", lambda name: "/nonexistent/paplay")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(cue_module.sys, "stderr", terminal)
    cue = Cue()
    cue.play(Level.STOP)
    cue.play(Level.INFO)  # no sound for prompts
    cue.close()
    assert terminal.getvalue() == "\a\a\a"
    Cue(enabled=False).play(Level.OK)
