"""Pure thermal models of the containers a logger rides in; the fleet simulator drives them.

Each container is a first-order system: its air temperature relaxes towards a target with a time
constant, ``T += (target - T) * (1 - exp(-dt / tau))``, which is exact for any step length, so a
simulator that runs 1000x faster gets the same curve. The target is the coolant's temperature while the
coolant holds (phase-change packs at ~5 °C, liquid nitrogen vapour at ~-190 °C), the ambient air when
the lid is open or the coolant is spent, and the ambient air for a controlled-room-temperature box.
No randomness and no clock here: noise and faults belong to the simulator.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final

DAY_S: Final = 86_400.0
HOUR_S: Final = 3_600.0


class Profile(enum.Enum):
    FRESH = "fresh"  # 2-8 °C starting material
    CRYO = "cryo"  # LN2 dry-vapour shipper, <= -150 °C
    ROOM = "room"  # 15-25 °C controlled room temperature


@dataclass(frozen=True, slots=True)
class ThermalModel:
    profile: Profile
    # Where the coolant holds the air while it lasts (unused for ROOM, which follows the ambient).
    setpoint_c: float
    # Closed lid: how fast the air returns to the coolant's temperature (or follows the ambient).
    tau_closed_s: float
    # Open lid: how fast the air heads for the ambient temperature.
    tau_open_s: float
    # How long the coolant holds: phase-change packs melt, liquid nitrogen boils off.
    hold_s: float
    # Slow warming while the coolant holds (an LN2 shipper warms as its charge shrinks).
    drift_c_per_day: float
    # After the coolant is spent the box only has its insulation between it and the room.
    tau_spent_s: float


FRESH_BOX: Final = ThermalModel(
    profile=Profile.FRESH,
    setpoint_c=5.0,
    tau_closed_s=45 * 60.0,
    tau_open_s=20 * 60.0,
    hold_s=96 * HOUR_S,
    drift_c_per_day=0.0,
    tau_spent_s=8 * HOUR_S,
)

LN2_SHIPPER: Final = ThermalModel(
    profile=Profile.CRYO,
    setpoint_c=-190.0,
    tau_closed_s=30 * 60.0,
    tau_open_s=2 * HOUR_S,
    # Dry shippers are qualified for about 10 days of hold time.
    hold_s=10 * DAY_S,
    drift_c_per_day=0.8,
    tau_spent_s=18 * HOUR_S,
)

ROOM_BOX: Final = ThermalModel(
    profile=Profile.ROOM,
    setpoint_c=20.0,
    # An insulated shipper: it halves the day's swing of the room it stands in.
    tau_closed_s=6 * HOUR_S,
    tau_open_s=30 * 60.0,
    hold_s=math.inf,
    drift_c_per_day=0.0,
    tau_spent_s=2 * HOUR_S,
)

MODELS: Final = {Profile.FRESH: FRESH_BOX, Profile.CRYO: LN2_SHIPPER, Profile.ROOM: ROOM_BOX}


def ambient_c(
    unix_s: float, mean_c: float = 22.0, amplitude_c: float = 4.0, peak_hour_utc: float = 14.0
) -> float:
    """Room air over the day: warmest in the afternoon, coolest before dawn."""
    hour = (unix_s % DAY_S) / HOUR_S
    return mean_c + amplitude_c * math.cos(2 * math.pi * (hour - peak_hour_utc) / 24.0)


def relax(temp_c: float, target_c: float, dt_s: float, tau_s: float) -> float:
    return target_c + (temp_c - target_c) * math.exp(-dt_s / tau_s)


def initial_temp(model: ThermalModel, ambient: float) -> float:
    return ambient if model.profile is Profile.ROOM else model.setpoint_c


def target_temp(model: ThermalModel, age_s: float, ambient: float, lid_open: bool) -> tuple[float, float]:
    """(target °C, time constant s) for a box packed ``age_s`` seconds ago."""
    if lid_open:
        return ambient, model.tau_open_s
    if model.profile is Profile.ROOM:
        return ambient, model.tau_closed_s
    if age_s < model.hold_s:
        return model.setpoint_c + model.drift_c_per_day * age_s / DAY_S, model.tau_closed_s
    return ambient, model.tau_spent_s


def step(
    model: ThermalModel, temp_c: float, age_s: float, dt_s: float, ambient: float, lid_open: bool
) -> float:
    """Air temperature ``dt_s`` seconds later. The target is taken at the start of the step, which is
    exact for the lid and ambient (held constant over a sampling interval) and close enough for the
    slow coolant drift."""
    target, tau = target_temp(model, age_s, ambient, lid_open)
    return relax(temp_c, target, dt_s, tau)
