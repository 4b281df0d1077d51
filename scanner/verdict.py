"""What the operator is told, and the exit status a headless run ends with."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class Level(StrEnum):
    OK = "ok"  # green: the step is recorded / the COIs match
    STOP = "stop"  # red: refused, mismatch or a damaged look-alike code; do not proceed
    WAIT = "wait"  # amber: saved but not confirmed (offline, log in again)
    INFO = "info"  # neutral: what to scan next


@dataclass(frozen=True, slots=True)
class Verdict:
    level: Level
    message: str
    detail: str = ""


class ExitCode(IntEnum):
    """``celltrail scan`` exit status (headless runs, ``--image``, ``--video``, ``--flush``)."""

    OK = 0  # every step accepted / verified
    STOP = 1  # at least one STOP was shown
    USAGE = 2  # bad options or configuration
    LOGIN = 3  # the backend wants a new login; scans stay queued
    NOTHING = 4  # nothing to record: no code found, or bedside verification never completed
    QUEUED = 5  # scans are saved locally but the backend has not confirmed them yet


@dataclass
class Tally:
    """Counts the verdicts of one run to derive its exit status."""

    ok: int = 0
    stop: int = 0
    login_required: bool = False
    pending: int = 0
    levels: list[Level] = field(default_factory=list)

    def add(self, verdict: Verdict) -> None:
        self.levels.append(verdict.level)
        if verdict.level is Level.OK:
            self.ok += 1
        elif verdict.level is Level.STOP:
            self.stop += 1

    def exit_code(self) -> ExitCode:
        if self.stop:
            return ExitCode.STOP
        if self.login_required:
            return ExitCode.LOGIN
        if self.pending:
            return ExitCode.QUEUED
        if not self.ok:
            return ExitCode.NOTHING
        return ExitCode.OK
