"""Planning's small rules, one row each: what a principal may do with a case's order, what a suite shows
on a calendar day, and how legs count per lane and per site."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from backend.db.repo.planning import BookingRow, CapacityRow, OrderRow
from backend.domain.access import Principal, Role
from backend.services.planning import bookings, capacity, kpis

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)


def _principal(*roles: Role, sites: tuple[str, ...] = ("HOS",)) -> Principal:
    return Principal(1, "u", "U", frozenset(roles), frozenset(sites))


def _order(status: str) -> OrderRow:
    return OrderRow(
        id=1, coi="C1", product="P", ordering_site="HOS", collection_site="APH", manufacturing_site="MFG",
        mdt_reference="M", mdt_date=date(2026, 3, 1), physician="Dr", status=status, ordered_by="u",
        ordered_at=T0, decided_by=None, decided_at=None, decision_reason=None, decision_event_id=None,
    )  # fmt: skip


COORD, MFG = Role.COORDINATOR, Role.MANUFACTURING


@pytest.mark.parametrize(
    ("principal", "order", "expected"),
    [
        # (order, decide, withdraw, book)
        (_principal(COORD), None, (True, False, False, False)),
        (_principal(COORD, sites=("MFG",)), None, (False, False, False, False)),
        (_principal(MFG), None, (False, False, False, False)),
        (_principal(COORD), _order("requested"), (False, False, True, False)),
        (_principal(MFG, sites=("MFG",)), _order("requested"), (False, True, False, False)),
        (_principal(MFG, sites=("MFG",)), _order("accepted"), (False, False, False, False)),
        (_principal(COORD, sites=("MFG",)), _order("requested"), (False, False, False, False)),
        (_principal(COORD), _order("accepted"), (False, False, True, True)),
        (_principal(COORD, sites=("APH",)), _order("accepted"), (False, False, False, True)),
        (_principal(MFG, sites=("APH",)), _order("accepted"), (False, False, False, False)),
    ],
)
def test_permissions(principal: Principal, order: OrderRow | None, expected: tuple[bool, ...]) -> None:
    assert bookings._permissions(principal, "HOS", order) == expected


def _booking(suite: str, start: int, end: int, *, flagged: bool = False, product: str = "P") -> BookingRow:
    return BookingRow(
        id=start, order_id=1, coi=f"C{start}", slot_id=1, ordering_site="HOS", collection_site="APH",
        collection_at=T0, manufacturing_site="MFG", product=product, suite=suite,
        manufacturing_start=date(2026, 3, start), manufacturing_end=date(2026, 3, end), status="active",
        flagged=flagged, flag_reason="lowered" if flagged else None, booked_at=T0,
    )  # fmt: skip


HELD = [_booking("S1", 2, 5, flagged=True), _booking("S9", 3, 4)]


@pytest.mark.parametrize(
    ("suite", "day", "expected"),
    [
        ("S1", 1, (None, False, False)),
        ("S1", 2, ("C2", True, True)),
        ("S1", 4, ("C2", True, False)),
        ("S1", 5, (None, False, False)),
        ("S2", 3, (None, False, False)),
        ("S9", 3, ("C3", False, True)),
    ],
)
def test_suite_day(suite: str, day: int, expected: tuple[str | None, bool, bool]) -> None:
    cell = capacity._suite_day(suite, date(2026, 3, day), HELD)
    assert (cell.coi, cell.flagged, cell.starts) == expected
    assert cell.booking_id == (None if cell.coi is None else int(cell.coi[1:]))


def test_calendar_lists_the_declared_suites_then_the_ones_only_bookings_hold() -> None:
    declared = [CapacityRow("MFG", "P", 2, ["S1", "S2"]), CapacityRow("MFG", "Q", 1, ["S2", "S3"])]
    assert capacity._suites(declared, HELD) == ["S1", "S2", "S3", "S9"]
    day = capacity._calendar_day(
        date(2026, 3, 3), ["S1", "S2", "S9"], declared, {date(2026, 3, 3): "audit"}, HELD
    )
    assert (day.blackout, day.free_suites, day.runs) == ("audit", 1, {"P": [1, 2], "Q": [0, 1]})


def _leg(src: str, dst: str, arrived_h: int | None, excursions: int = 0, refusals: int = 0) -> kpis.LegFacts:
    arrived = None if arrived_h is None else T0.replace(hour=arrived_h)
    return kpis.LegFacts(
        shipment_id=f"{src}{dst}{arrived_h}", from_site=src, to_site=dst, planned_arrival=T0.replace(hour=12),
        arrived_at=arrived, excursions=excursions, refusals=refusals,
    )  # fmt: skip


def test_lanes_and_sites() -> None:
    legs = [
        _leg("A", "B", 11, excursions=2),
        _leg("A", "B", 13, refusals=1),
        _leg("A", "B", None),
        _leg("B", "C", 12),
    ]
    lanes = {
        f.lane: (f.shipments, f.arrived, f.on_time, f.on_time_rate, f.excursions, f.refusals)
        for f in kpis._lane_figures(legs)
    }
    assert lanes == {"A→B": (3, 2, 1, 0.5, 2, 1), "B→C": (1, 1, 1, 1.0, 0, 0)}
    # Excursions count for the sending site, refusals for the receiving one.
    sites = {f.site: (f.shipments, f.excursions, f.refusals) for f in kpis._site_figures(legs)}
    assert sites == {"A": (3, 2, 0), "B": (1, 0, 1), "C": (0, 0, 0)}
    assert kpis._lane_figures([_leg("A", "B", None)])[0].on_time_rate is None
