"""The engine's state between two batches, and what it reports. Pure data; msgpack round-trips it so the
state of a shipment leg can live in PostgreSQL and any replica can carry on from it."""

from __future__ import annotations

from typing import Final, NamedTuple

import msgspec

from backend.domain.excursions.profiles import SEVERITY_RANK

TEMPERATURE_HIGH: Final = "temperature_high"
TEMPERATURE_LOW: Final = "temperature_low"
RATE: Final = "rate_of_change"
PREDICTED: Final = "predicted_excursion"
MKT: Final = "mkt_high"
BATTERY: Final = "battery_low"
LID: Final = "lid_open"
DATA_GAP: Final = "data_gap"
# Alert kinds this engine owns: it opens, escalates and resolves them; nothing else does.
ENGINE_KINDS: Final = (TEMPERATURE_HIGH, TEMPERATURE_LOW, RATE, PREDICTED, MKT, BATTERY, LID, DATA_GAP)
# An interval longer than this many expected intervals is a gap (CELLTRAIL_GAP_FACTOR overrides it).
DEFAULT_GAP_FACTOR: Final = 3.0


class Reading(NamedTuple):
    t: float  # unix seconds
    temp_c: float
    battery_pct: int | None = None
    lid_open: bool | None = None


class Band(msgspec.Struct):
    """One limit: in an episode from the first reading beyond it until a reading back inside by the
    hysteresis margin; time strictly beyond is counted for the leg and for the episode."""

    active: bool = False
    start: float = 0.0
    run_start: float | None = None
    total_s: float = 0.0
    episode_s: float = 0.0
    # Uncovered seconds (data gaps) since `start` and since `run_start`: a gap is no time beyond.
    gap_s: float = 0.0
    run_gap_s: float = 0.0


class Track(msgspec.Struct):
    """An alertable episode in progress (one side of the range, or one signal)."""

    active: bool = False
    start: float = 0.0
    peak: float | None = None
    severity: str | None = None
    fired_at: float | None = None
    escalated_at: float | None = None
    fired: list[str] = msgspec.field(default_factory=list)
    note: str = ""


class Episode(msgspec.Struct, frozen=True):
    """An excursion that fired: ongoing when `end` is None."""

    kind: str
    start: float
    end: float | None
    severity: str
    fired_at: float
    escalated_at: float | None
    peak: float | None
    minutes_beyond: float
    rules: tuple[str, ...]
    note: str


class EngineState(msgspec.Struct):
    last: Reading | None = None
    first_t: float | None = None
    readings: int = 0
    closed: bool = False
    bands: dict[str, Band] = msgspec.field(default_factory=dict)
    tracks: dict[str, Track] = msgspec.field(default_factory=dict)
    # Thinned recent readings for the rate of change and the trend (at most ~30 and ~60 per window).
    recent: list[tuple[float, float]] = msgspec.field(default_factory=list)
    trend: list[tuple[float, float]] = msgspec.field(default_factory=list)
    # Mean kinetic temperature over whole hours: [hour, Σ exp(-ΔH/RT), n].
    mkt_buckets: list[tuple[int, float, int]] = msgspec.field(default_factory=list)
    # Seconds strictly beyond each limit per calendar day in the engine's time zone:
    # {"2026-01-10": {"high": 1800.0}}.
    daily: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)
    # The calendar days the last counted interval touched: a per-day rule looks at these.
    last_days: list[str] = msgspec.field(default_factory=list)
    # Time beyond each limit a rolling rule counts, as merged [from, to) spans within its longest window.
    spans: dict[str, list[tuple[float, float]]] = msgspec.field(default_factory=dict)
    # Episodes that ended since the state was last drained.
    finished: list[Episode] = msgspec.field(default_factory=list)
    # The shortest interval between two readings so far: the logger's interval when none was declared.
    learned_interval_s: float | None = None
    # Data gaps, [from, to] in unix seconds, and their total: time counted neither in nor out of range.
    gaps: list[tuple[float, float]] = msgspec.field(default_factory=list)
    uncovered_s: float = 0.0
    # Gap notices held back until the gap settles (the service's rule), by the gap's start: when the
    # reading that ends the gap arrived (unix seconds).
    unsettled: dict[str, float] = msgspec.field(default_factory=dict)


def fire(track: Track, rule_id: str, severity: str, t: float) -> None:
    """A rule holds: the episode alerts, or escalates when the rule is more severe than what fired so far."""
    track.fired.append(rule_id)
    if track.severity is None:
        track.severity, track.fired_at = severity, t
    elif SEVERITY_RANK[severity] > SEVERITY_RANK[track.severity]:
        track.severity, track.escalated_at = severity, t


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(EngineState)


def dump_state(state: EngineState) -> bytes:
    return _encoder.encode(state)


def load_state(blob: bytes) -> EngineState:
    return _decoder.decode(blob)
