"""The pure parts of the pages: the board's rules (ETA, temperature against the profile, logger health)
and the SVG chart (band, excursions, events, and every text escaped)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from backend.db.repo.board import BoardRow
from backend.domain.temperature import Summary
from backend.reports.excursions import Excursion
from backend.reports.record import EventLine, TemperatureLeg
from backend.services import board
from backend.web.chart import temperature_svg

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def row(**changes: object) -> BoardRow:
    base: dict[str, object] = {
        "id": "SHP-2026-000001",
        "coi": "CHA999926000001",
        "from_site": "USZ-APH",
        "to_site": "CTA",
        "status": "in_transit",
        "container_id": "BOX",
        "profile_code": "fresh",
        "profile": {"low_c": 2.0, "high_c": 8.0},
        "planned_departure": T0,
        "planned_arrival": T0 + timedelta(hours=4),
        "departed_at": None,
        "arrived_at": None,
        "holder_name": None,
        "logger_id": "LGR-0001",
        "logger_online": True,
        "logger_battery_pct": 80,
        "logger_last_seen_at": T0,
        "last_action": None,
        "last_outcome": None,
        "last_scan_at": None,
        "last_scan_site": None,
        "last_scan_by": None,
        "reading_ts": T0,
        "reading_temp_c": 5.0,
        "reading_battery_pct": None,
        "alerts_critical": 0,
        "alerts_warning": 0,
        "alerts_info": 0,
    }
    return BoardRow(**{**base, **changes})  # type: ignore[arg-type]


def test_a_late_departure_moves_the_eta_by_the_same_delay():
    late = row(departed_at=T0 + timedelta(minutes=50))
    line = board.line_of(late, T0 + timedelta(hours=1))
    assert line.eta == T0 + timedelta(hours=4, minutes=50)
    assert line.minutes_late == 50
    assert board.line_of(row(), T0).minutes_late == 0


def test_temperature_is_judged_against_the_profile():
    assert board.temperature_state(None, 2, 8) == "none"
    assert board.temperature_state(8.5, 2, 8) == "high"
    assert board.temperature_state(1.5, 2, 8) == "low"
    assert board.temperature_state(-160.0, None, -150.0) == "ok"


def test_a_logger_not_heard_from_is_silent_whatever_it_last_said():
    now = T0 + board.SILENT_AFTER + timedelta(seconds=1)
    assert board.logger_state(row(), now) == "silent"
    assert board.logger_state(row(), T0 + timedelta(minutes=1)) == "online"
    assert board.logger_state(row(logger_online=False), T0) == "offline"
    assert board.logger_state(row(logger_id=None), T0) == "none"


def test_the_worst_open_alert_ranks_the_shipment_and_filters_match():
    line = board.line_of(row(alerts_warning=2, alerts_critical=1), T0)
    assert line.severity == "critical"
    assert board.matches(line, board.Filters(q="cha9999"))
    assert not board.matches(line, board.Filters(site="USZ"))
    assert not board.matches(line, board.Filters(severity="warning"))


def leg(readings: list[tuple[datetime, float]], excursions: list[Excursion]) -> TemperatureLeg:
    summary = Summary(len(readings), None, None, None, None, None, None, 0.0, 0.0)
    return TemperatureLeg(
        shipment_id="SHP-2026-000001",
        from_site="A",
        to_site="B",
        container_id="C",
        logger_id=None,
        profile="fresh v1",
        low_c=2.0,
        high_c=8.0,
        status="in_transit",
        planned_departure=T0,
        planned_arrival=T0,
        departed_at=None,
        arrived_at=None,
        received_at=None,
        units=[],
        summary=summary,
        excursions=excursions,
        temperature_alerts=[],
        alarm=bool(excursions),
        readings=readings,
        readings_truncated=False,
    )


def event(seq: int, action: str, minutes: int, actor: str = "Nora") -> EventLine:
    return EventLine(
        id=seq,
        seq=seq,
        server_time=T0 + timedelta(minutes=minutes),
        device_time=None,
        action=action,
        outcome="accepted",
        refusal=None,
        detail="",
        actor=actor,
        site="USZ",
        shipment_id=None,
        unit_ids=[],
        counterpart=None,
        signatures=[],
        data={},
        corrects=None,
        corrected_by=[],
        hash="00",
    )


def test_the_chart_shades_excursions_draws_the_band_and_marks_events():
    readings = [(T0 + timedelta(minutes=m), t) for m, t in ((0, 5), (10, 9.5), (20, 12), (30, 6))]
    excursion = Excursion("above", 8.0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=30), 12, 20, False)
    svg = temperature_svg(
        leg(readings, [excursion]),
        [event(1, "pickup", 0), event(2, "handover", 25, actor="<script>x</script>")],
    )
    root = ElementTree.fromstring(svg)  # well-formed XML: every text escaped
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert len(root.findall(".//s:rect[@class='excursion']", ns)) == 1
    assert len(root.findall(".//s:rect[@class='band']", ns)) == 1
    assert len(root.findall(".//s:g", ns)) == 2
    assert "<script>" not in svg
    assert len(root.find(".//s:polyline", ns).get("points").split()) == 4  # type: ignore[union-attr]


def test_a_leg_without_readings_says_so():
    assert "No readings recorded" in temperature_svg(leg([], []), [])
