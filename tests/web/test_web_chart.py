"""The temperature chart as a phone shows it: drawn at the phone's width so its text is full size, with
event names whole inside the plot and clear of each other, times in the site's zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from backend.domain.temperature import Summary
from backend.reports.record import EventLine, TemperatureLeg
from backend.web.chart import CHAR_WIDTH, NARROW, WIDE, chart_pair, temperature_svg

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
NS = {"s": "http://www.w3.org/2000/svg"}


def leg() -> TemperatureLeg:
    readings = [(T0 + timedelta(minutes=m), 5.0 + (m % 7) / 3) for m in range(0, 240, 5)]
    return TemperatureLeg(
        shipment_id="SHP-2026-000001",
        from_site="USZ-APH",
        to_site="CTA",
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
        summary=Summary(len(readings), None, None, None, None, None, None, 0.0, 0.0),
        excursions=[],
        temperature_alerts=[],
        alarm=False,
        readings=readings,
        readings_truncated=False,
    )


def event(seq: int, action: str, minutes: float) -> EventLine:
    return EventLine(
        id=seq,
        seq=seq,
        server_time=T0 + timedelta(minutes=minutes),
        device_time=None,
        action=action,
        outcome="accepted",
        refusal=None,
        detail="",
        actor="Nora",
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


# A burst of steps at the start, one in the middle, a hand-over confirmation at the very end.
EVENTS = [
    *[
        event(i, a, i * 0.5)
        for i, a in enumerate(["label", "pack", "pickup", "handover", "handover_confirm"])
    ],
    event(6, "receive", 120),
    event(7, "handover_confirm", 240),
]


def labels(svg: str) -> list[tuple[float, float, float]]:
    root = ElementTree.fromstring(svg)
    font = float(root.get("font-size", "0"))
    found = []
    for text in root.findall(".//s:g/s:text", NS):
        x, y = float(text.get("x", "0")), float(text.get("y", "0"))
        found.append((x, x + len(text.text or "") * font * CHAR_WIDTH, y))
    return found


def test_the_phone_drawing_is_the_phones_width_and_its_text_full_size():
    svg = temperature_svg(leg(), EVENTS, "Europe/Zurich", NARROW)
    root = ElementTree.fromstring(svg)
    width = float((root.get("viewBox") or "").split()[2])
    assert width <= 330  # shown at about its own width in a 360 px phone's card
    assert float(root.get("font-size", "0")) >= 12


def test_event_names_are_whole_inside_the_plot_and_never_overlap():
    for layout in (WIDE, NARROW):
        svg = temperature_svg(leg(), EVENTS, "UTC", layout)
        placed = labels(svg)
        assert placed, layout
        for start, end, _ in placed:
            assert layout.left <= start
            assert end <= layout.width - layout.right
        for i, (a0, a1, ay) in enumerate(placed):
            for b0, b1, by in placed[i + 1 :]:
                assert ay != by or a1 <= b0 or b1 <= a0, (layout, placed)
        # Every event keeps its line and its tooltip, named or not.
        assert len(ElementTree.fromstring(svg).findall(".//s:g", NS)) == len(EVENTS)


def test_chart_times_are_in_the_sites_zone_with_the_zone_named():
    svg = chart_pair(leg(), EVENTS, "Europe/Zurich")
    assert "09:00 CET" in svg  # 08:00 UTC in Zurich in November
    assert not re.search(r"\b08:00 UTC\b", svg)
    assert 'class="chart chart-wide"' in svg
    assert 'class="chart chart-narrow"' in svg
