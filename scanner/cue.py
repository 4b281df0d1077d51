"""An audible cue for each verdict, where the machine can make one; never an error where it cannot.

A sound player (``paplay``, then ``aplay``) plays a short generated tone: one high beep for OK, three
low ones for STOP. Without a player, the terminal bell is rung when stderr is a terminal.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import wave
from pathlib import Path
from typing import Final

from scanner.verdict import Level

RATE: Final = 16_000
TONES: Final = {Level.OK: ((1320.0, 0.12),), Level.STOP: ((440.0, 0.18), (0.0, 0.08)) * 3}


def _write_wav(path: Path, tones: tuple[tuple[float, float], ...]) -> None:
    frames = bytearray()
    for frequency, seconds in tones:
        for n in range(int(RATE * seconds)):
            sample = 0.4 * math.sin(2 * math.pi * frequency * n / RATE) if frequency else 0.0
            frames += struct.pack("<h", int(sample * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))


class Cue:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        players = (shutil.which(name) for name in ("paplay", "aplay")) if enabled else iter(())
        self._player = next((path for path in players if path), None)
        self._files: dict[Level, Path] = {}
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._playing: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()  # verdicts come from the decode worker and the sender

    def _file(self, level: Level) -> Path:
        if level not in self._files:
            if self._directory is None:
                self._directory = tempfile.TemporaryDirectory(prefix="celltrail-cue-")
            path = Path(self._directory.name) / f"{level}.wav"
            _write_wav(path, TONES[level])
            self._files[level] = path
        return self._files[level]

    def play(self, level: Level) -> None:
        if not self.enabled or level not in TONES:
            return
        with self._lock:
            self._play(level)

    def _play(self, level: Level) -> None:
        self._playing = [process for process in self._playing if process.poll() is None]
        if self._player is not None:
            try:
                process = subprocess.Popen(
                    [self._player, str(self._file(level))],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    stdin=subprocess.DEVNULL,
                )
                self._playing.append(process)
                return
            except OSError:
                self._player = None
        if sys.stderr.isatty():
            sys.stderr.write("\a" * (1 if level is Level.OK else 3))
            sys.stderr.flush()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        for process in self._playing:
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
        self._playing = []
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None
