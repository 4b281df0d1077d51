"""A fleet of virtual temperature loggers publishing the Celltrail MQTT contract.

One thread drives every logger from a heap of next-due times (a timer wheel in effect), so 10,000
loggers cost 10,000 small objects, not 10,000 threads. :class:`Fleet` is deterministic for a seed and a
sequence of simulated times; :func:`run_fleet` maps wall time to simulated time and hands the messages to
a publish function, so the fleet is tested without a broker.

Behaviour per logger: a container (2-8 °C box, LN2 dry shipper or room-temperature box, see
thermal.py) sampled every ``interval_s``; faults injected at random: excursions (lid left open, or a box
left in a hot van), offline periods that end with a backlog flush (chunks, some in reverse order),
battery drain (a few loggers drain fast and die, leaving an offline status), duplicate deliveries and
out-of-order deliveries. A share of the loggers speak the binary frame (frame.py) instead of JSON.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, NamedTuple

import msgspec

from firmware_bridge import frame, thermal, topics

FIRMWARE: Final = "celltrail-sim/1"
BACKLOG_CHUNK: Final = 500
LOW_BATTERY_PCT: Final = 15.0


class Outgoing(NamedTuple):
    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Rates per logger per simulated day, and chances per message. ``scaled(0)`` switches faults off."""

    excursions_per_day: float = 0.5
    offline_per_day: float = 0.3
    duplicate_chance: float = 0.01
    reorder_chance: float = 0.01
    fast_drain_share: float = 0.02
    bad_payload_chance: float = 0.0

    def scaled(self, factor: float) -> FaultRates:
        return FaultRates(
            excursions_per_day=self.excursions_per_day * factor,
            offline_per_day=self.offline_per_day * factor,
            duplicate_chance=min(self.duplicate_chance * factor, 1.0),
            reorder_chance=min(self.reorder_chance * factor, 1.0),
            fast_drain_share=min(self.fast_drain_share * factor, 1.0),
            bad_payload_chance=min(self.bad_payload_chance * factor, 1.0),
        )


@dataclass(slots=True)
class VirtualLogger:
    logger_id: str
    model: thermal.ThermalModel
    binary: bool
    interval_s: float
    packed_at: float
    temp_c: float
    battery_pct: float
    drain_pct_per_s: float
    noise_c: float
    last_t: float
    seq: int = 0
    lid_until: float = 0.0
    heat_until: float = 0.0
    offline_until: float = 0.0
    dead: bool = False
    # Samples taken while offline: (unix ts, °C, seq), flushed when the logger is back.
    backlog: list[tuple[float, float, int]] = field(default_factory=list)
    # A message held back to be delivered after the next one (out-of-order delivery).
    held: Outgoing | None = None


class _JsonReading(msgspec.Struct):
    ts: datetime
    temp_c: float


class _JsonTelemetry(msgspec.Struct, omit_defaults=True):
    logger_id: str
    readings: list[_JsonReading]
    battery_pct: int | None = None
    lid_open: bool | None = None


class _Status(msgspec.Struct, omit_defaults=True):
    online: bool
    logger_id: str
    ts: datetime
    battery_pct: int | None = None
    firmware: str | None = None


_encoder: Final = msgspec.json.Encoder()


def logger_id(index: int) -> str:
    """LGR-0001, LGR-0002, ...; wider numbers when the fleet outgrows four digits."""
    return f"LGR-{index:04d}"


@dataclass(slots=True)
class FleetStats:
    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    reordered: int = 0
    backlog_flushes: int = 0
    excursions: int = 0
    bad_payloads: int = 0
    dead_loggers: int = 0


class Fleet:
    def __init__(
        self,
        count: int,
        interval_s: float,
        start_s: float,
        *,
        seed: int = 1,
        faults: FaultRates | None = None,
        binary_share: float = 0.1,
    ) -> None:
        if count < 1 or interval_s <= 0:
            raise ValueError("a fleet needs at least one logger and a positive interval")
        # A seeded PRNG on purpose: a simulation must be reproducible; nothing here is secret.
        self.rng = random.Random(seed)  # noqa: S311
        self.faults = faults if faults is not None else FaultRates()
        self.stats = FleetStats()
        self.loggers: list[VirtualLogger] = []
        self._heap: list[tuple[float, int]] = []
        profiles = (thermal.FRESH_BOX, thermal.LN2_SHIPPER, thermal.ROOM_BOX)
        for index in range(count):
            rng = self.rng
            model = rng.choices(profiles, weights=(5, 3, 2))[0]
            binary = rng.random() < binary_share
            # The binary frame carries whole seconds, so its loggers sample on whole seconds.
            interval = max(1.0, round(interval_s)) if binary else interval_s
            first = start_s + rng.uniform(0, interval)
            if binary:
                first = math.ceil(first)
            drain_days = (
                rng.uniform(0.5, 2.0) if rng.random() < self.faults.fast_drain_share else rng.uniform(60, 365)
            )
            ambient = thermal.ambient_c(start_s)
            self.loggers.append(
                VirtualLogger(
                    logger_id=logger_id(index + 1),
                    model=model,
                    binary=binary,
                    interval_s=interval,
                    packed_at=start_s - rng.uniform(0, 2 * thermal.DAY_S),
                    temp_c=thermal.initial_temp(model, ambient),
                    battery_pct=rng.uniform(40, 100),
                    drain_pct_per_s=100.0 / (drain_days * thermal.DAY_S),
                    noise_c=0.1 if model.profile is thermal.Profile.CRYO else 0.03,
                    last_t=first - interval,
                )
            )
            self._heap.append((first, index))
        heapq.heapify(self._heap)

    def birth_messages(self, now: float) -> list[Outgoing]:
        return [self._status(lg, True, now) for lg in self.loggers]

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def advance(self, now: float) -> list[Outgoing]:
        """Every message the fleet publishes for samples due up to ``now`` (simulated unix time)."""
        out: list[Outgoing] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, index = heapq.heappop(heap)
            lg = self.loggers[index]
            self._sample(lg, due, out)
            if not lg.dead:
                heapq.heappush(heap, (due + lg.interval_s, index))
        self.stats.messages += len(out)
        return out

    def shutdown_messages(self, now: float) -> list[Outgoing]:
        """Held messages and backlogs go out, then each logger's status says offline."""
        out: list[Outgoing] = []
        for lg in self.loggers:
            if lg.backlog:
                self._flush_backlog(lg, out)
            if lg.held is not None:
                out.append(lg.held)
                lg.held = None
            out.append(self._status(lg, False, now))
        self.stats.messages += len(out)
        return out

    # -- one sample ----------------------------------------------------------------------------------

    def _sample(self, lg: VirtualLogger, t: float, out: list[Outgoing]) -> None:
        rng, faults = self.rng, self.faults
        dt = max(t - lg.last_t, 0.0)
        lg.last_t = t
        per_sample = dt / thermal.DAY_S
        if rng.random() < faults.excursions_per_day * per_sample:
            self.stats.excursions += 1
            if lg.model.profile is thermal.Profile.ROOM:
                lg.heat_until = t + rng.uniform(30, 180) * 60
            else:
                lg.lid_until = t + rng.uniform(5, 40) * 60
        ambient = thermal.ambient_c(t) + (15.0 if t < lg.heat_until else 0.0)
        lid_open = t < lg.lid_until
        lg.temp_c = thermal.step(lg.model, lg.temp_c, t - lg.packed_at, dt, ambient, lid_open)
        measured = round(lg.temp_c + rng.gauss(0.0, lg.noise_c), 2)
        lg.battery_pct -= lg.drain_pct_per_s * dt
        if lg.battery_pct <= 0:
            # A dead battery says nothing; the broker's last will would publish this status.
            lg.dead = True
            self.stats.dead_loggers += 1
            # Whatever it had not uploaded dies with it, as with a real logger.
            lg.backlog.clear()
            out.append(self._status(lg, False, t))
            return
        lg.seq = (lg.seq + 1) & 0xFFFFFFFF
        if t < lg.offline_until:
            lg.backlog.append((t, measured, lg.seq))
            return
        if lg.backlog:
            lg.backlog.append((t, measured, lg.seq))
            out.append(self._status(lg, True, t))
            self._flush_backlog(lg, out)
            return
        if rng.random() < faults.offline_per_day * per_sample:
            lg.offline_until = t + rng.uniform(10, 180) * 60
            lg.backlog.append((t, measured, lg.seq))
            out.append(self._status(lg, False, t))
            return
        self._deliver(lg, self._telemetry(lg, [(t, measured, lg.seq)], lid_open), out)

    def _flush_backlog(self, lg: VirtualLogger, out: list[Outgoing]) -> None:
        self.stats.backlog_flushes += 1
        chunks = [lg.backlog[i : i + BACKLOG_CHUNK] for i in range(0, len(lg.backlog), BACKLOG_CHUNK)]
        lg.backlog = []
        if self.rng.random() < 0.5:
            # Firmware that uploads newest first: the backend must not assume order.
            chunks.reverse()
        for chunk in chunks:
            if not lg.binary and self.rng.random() < 0.3:
                chunk = chunk[:]
                self.rng.shuffle(chunk)
            self._deliver(lg, self._telemetry(lg, chunk, False), out)

    def _deliver(self, lg: VirtualLogger, message: Outgoing, out: list[Outgoing]) -> None:
        rng, faults = self.rng, self.faults
        if rng.random() < faults.bad_payload_chance:
            self.stats.bad_payloads += 1
            message = _corrupt(message, rng)
        if lg.held is None and rng.random() < faults.reorder_chance:
            lg.held = message
            self.stats.reordered += 1
            return
        out.append(message)
        if rng.random() < faults.duplicate_chance:
            self.stats.duplicates += 1
            out.append(message)
        if lg.held is not None:
            out.append(lg.held)
            lg.held = None

    # -- encodings -----------------------------------------------------------------------------------

    def _telemetry(
        self, lg: VirtualLogger, samples: list[tuple[float, float, int]], lid_open: bool
    ) -> Outgoing:
        battery = max(0, min(100, round(lg.battery_pct)))
        self.stats.readings += len(samples)
        if lg.binary:
            payload = frame.encode(
                frame.Frame(
                    logger_id=lg.logger_id,
                    seq=samples[0][2],
                    base_ts=int(samples[0][0]),
                    interval_s=int(lg.interval_s) if len(samples) > 1 else 0,
                    temps_centi=tuple(round(s[1] * 100) for s in samples),
                    battery_pct=battery,
                    lid_open=lid_open,
                    low_battery=lg.battery_pct < LOW_BATTERY_PCT,
                )
            )
            return Outgoing(topics.telemetry_bin_topic(lg.logger_id), payload)
        message = _JsonTelemetry(
            logger_id=lg.logger_id,
            readings=[_JsonReading(ts=datetime.fromtimestamp(s[0], UTC), temp_c=s[1]) for s in samples],
            battery_pct=battery,
            lid_open=lid_open,
        )
        return Outgoing(topics.telemetry_topic(lg.logger_id), _encoder.encode(message))

    def _status(self, lg: VirtualLogger, online: bool, now: float) -> Outgoing:
        status = _Status(
            online=online,
            logger_id=lg.logger_id,
            ts=datetime.fromtimestamp(now, UTC),
            battery_pct=max(0, min(100, round(lg.battery_pct))),
            firmware=FIRMWARE,
        )
        return Outgoing(topics.status_topic(lg.logger_id), _encoder.encode(status), retain=True)


def _corrupt(message: Outgoing, rng: random.Random) -> Outgoing:
    """Damage a message the way real links and firmware bugs do, to exercise the dead-letter path."""
    if message.topic.endswith("/bin"):
        data = bytearray(message.payload)
        data[rng.randrange(len(data))] ^= 0x5A
        return message._replace(payload=bytes(data))
    text = message.payload.decode()
    if rng.random() < 0.5:
        return message._replace(payload=text.replace('"temp_c":', '"temp_c":-300.0,"x":', 1).encode())
    return message._replace(payload=text[: len(text) // 2].encode())


# -- the driver ------------------------------------------------------------------------------------


class SimClock:
    """Simulated time runs ``speedup`` times faster than the wall from ``history_s`` in the past, and
    never overtakes the wall clock: readings from the future would rightly be refused."""

    def __init__(self, speedup: float, history_s: float, wall: Callable[[], float] = time.time) -> None:
        self.speedup = speedup
        self._wall = wall
        self.wall_start = wall()
        self.sim_start = self.wall_start - history_s

    def now(self) -> float:
        wall = self._wall()
        return min(self.sim_start + (wall - self.wall_start) * self.speedup, wall)

    def wall_seconds_until(self, sim_t: float) -> float:
        wall = self._wall()
        sim = self.now()
        if sim >= wall - 1e-6:
            return sim_t - sim
        return (sim_t - sim) / self.speedup


def run_fleet(
    fleet: Fleet,
    clock: SimClock,
    publish: Callable[[Outgoing], None],
    stop: threading.Event,
    *,
    duration_s: float | None = None,
) -> FleetStats:
    """Publish the fleet's messages as simulated time passes, until ``stop`` is set or the duration ends."""
    for message in fleet.birth_messages(clock.now()):
        publish(message)
    ends = time.monotonic() + duration_s if duration_s is not None else math.inf
    while not stop.is_set() and time.monotonic() < ends:
        for message in fleet.advance(clock.now()):
            publish(message)
        due = fleet.next_due()
        wait = 0.25 if due is None else clock.wall_seconds_until(due)
        stop.wait(min(max(wait, 0.001), 0.25, max(ends - time.monotonic(), 0.0)))
    for message in fleet.shutdown_messages(clock.now()):
        publish(message)
    return fleet.stats
