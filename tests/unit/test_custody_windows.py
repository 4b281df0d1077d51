"""The thaw-to-infusion window and the expiry in the pure state machine: the product's window passed in
with the unit replaces the default, and the STOP names the times in the site's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.domain.custody import Action, Refusal, UnitState, decide

THAWED = datetime(2026, 1, 15, 14, 2, tzinfo=UTC)  # 15:02 in Zurich (CET)


def bag(**extra: object) -> UnitState:
    fields: dict[str, object] = {"thawed_at": THAWED, "zone": "Europe/Zurich"} | extra
    return UnitState("B1", "CHA999926000001", "PRC", "thawed", "USZ", None, True, False, **fields)  # type: ignore[arg-type]


def infuse(unit: UnitState, minutes: int) -> object:
    return decide(
        Action.INFUSE,
        site="USZ",
        actor_id=1,
        shipment=None,
        units=[unit],
        wristband_coi=unit.coi,
        now=THAWED + timedelta(minutes=minutes),
    )


def test_the_products_window_replaces_the_default_hour() -> None:
    short = bag(thaw_limit=timedelta(minutes=30))
    with pytest.raises(Refusal) as refused:
        infuse(short, 31)
    assert refused.value.code == "thaw_window_exceeded"
    assert refused.value.detail == (
        "STOP — bag B1 was thawed at 15:02 CET, 31 min ago (now 15:33 CET); it must be infused within "
        "30 min of thawing (limit 15:32 CET). Do not infuse; tell QA."
    )
    infuse(short, 29)
    # Without a product's window, a product bag has the default hour; a longer window lets it wait.
    infuse(bag(), 59)
    with pytest.raises(Refusal):
        infuse(bag(), 61)
    infuse(bag(thaw_limit=timedelta(minutes=180)), 179)


def test_times_are_in_utc_without_a_known_zone_and_expiry_is_checked_first() -> None:
    for zone in (None, "Not/AZone", "../../etc/passwd"):
        with pytest.raises(Refusal) as refused:
            infuse(bag(zone=zone), 61)
        assert "thawed at 14:02 UTC" in refused.value.detail
    expired = bag(expires_at=THAWED + timedelta(minutes=10))
    with pytest.raises(Refusal) as refused:
        infuse(expired, 61)
    assert refused.value.code == "expired"
    assert "expired at 2026-01-15 15:12 CET (now 2026-01-15 16:03 CET)" in refused.value.detail
