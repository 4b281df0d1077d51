"""Thermal models: plausible curves for the containers Celltrail watches."""

from __future__ import annotations

import pytest

from firmware_bridge import thermal


def run(model: thermal.ThermalModel, hours: float, step_s: float, ambient: float, lid=lambda t: False):
    temp, t, curve = thermal.initial_temp(model, ambient), 0.0, []
    while t < hours * 3600:
        temp = thermal.step(model, temp, t, step_s, ambient, lid(t))
        t += step_s
        curve.append((t, temp))
    return curve


def test_closed_fresh_box_holds_2_to_8():
    curve = run(thermal.FRESH_BOX, hours=48, step_s=300, ambient=25.0)
    assert all(2.0 <= temp <= 8.0 for _, temp in curve)


def test_fresh_box_warms_while_the_lid_is_open_and_recovers_after():
    open_from, open_to = 3600.0, 3600.0 + 20 * 60
    curve = run(thermal.FRESH_BOX, hours=6, step_s=60, ambient=25.0, lid=lambda t: open_from <= t < open_to)
    before = [temp for t, temp in curve if t <= open_from]
    during = [temp for t, temp in curve if open_from < t <= open_to]
    after = curve[-1][1]
    assert max(before) == pytest.approx(5.0)
    assert during == sorted(during)  # keeps warming while open
    assert during[-1] > 8.0  # a 20 minute opening at 25 °C is an excursion
    assert after < 5.5  # and the coolant brings it back


def test_ln2_shipper_stays_below_minus_150_for_days_then_warms():
    curve = run(thermal.LN2_SHIPPER, hours=24 * 14, step_s=600, ambient=22.0)
    below = [t for t, temp in curve if temp <= -150.0]
    hold_days = max(below) / thermal.DAY_S
    assert 9.0 < hold_days < 12.0
    assert curve[0][1] < -185.0
    assert curve[-1][1] > -100.0  # spent: heading for the room


def test_room_box_follows_the_day_with_a_lag():
    temps, t, temp = [], 0.0, thermal.ambient_c(0.0)
    while t < 2 * thermal.DAY_S:
        temp = thermal.step(thermal.ROOM_BOX, temp, t, 600, thermal.ambient_c(t), False)
        t += 600
        temps.append(temp)
    second_day = temps[len(temps) // 2 :]
    assert 15.0 < min(second_day) < max(second_day) < 25.0
    assert max(second_day) - min(second_day) > 3.0


def test_step_is_exact_whatever_the_step_length():
    coarse = thermal.step(thermal.FRESH_BOX, 20.0, 0.0, 3600, 25.0, False)
    fine = 20.0
    for _ in range(60):
        fine = thermal.step(thermal.FRESH_BOX, fine, 0.0, 60, 25.0, False)
    assert coarse == pytest.approx(fine)
