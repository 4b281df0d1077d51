"""Data gaps outside the engine: the rule the reports and the receipt use finds the gaps the engine finds,
the summary lists them and counts them neither in nor out of range, the report's excursions end at a
gap, and the web chart shades each gap and breaks its line there."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from excursion_cases import FRESH, T0
from hypothesis import given
from hypothesis import strategies as st

from backend.domain.excursions import Engine, Reading, parse_definition, rules_for
from backend.domain.excursions.gaps import find_gaps
from backend.domain.temperature import summarise
from backend.reports.excursions import find_excursions
from backend.reports.record import TemperatureLeg
from backend.web.chart import temperature_svg

START = datetime.fromtimestamp(T0, UTC)


@given(
    st.lists(st.sampled_from([1, 1, 2, 5, 10, 60, 400]), min_size=1, max_size=80),
    st.sampled_from([None, 60.0, 300.0]),
)
def test_the_reports_find_the_gaps_the_engine_finds(steps, declared):
    times = [T0 + 60 * m for m in itertools.accumulate(steps, initial=0)]
    engine = Engine(rules_for(parse_definition(FRESH)), None, expected_interval_s=declared)
    engine.feed(Reading(t, 5.0) for t in times)
    assert find_gaps(times, declared, 3.0) == [tuple(g) for g in engine.state.gaps]


def _series(minutes_and_temps: list[tuple[int, float]]) -> list[tuple[datetime, float]]:
    return [(START + timedelta(minutes=m), t) for m, t in minutes_and_temps]


# One reading a minute at 9 °C, a 6-hour hole (the logger offline), then back in range.
WARM_THEN_HOLE = _series([(m, 9.0) for m in range(5)] + [(364 + m, 5.0) for m in range(5)])


def test_a_gap_is_listed_and_counted_neither_above_nor_below():
    starts = [s for s, _e in find_gaps([ts.timestamp() for ts, _ in WARM_THEN_HOLE], None, 3.0)]
    summary = summarise(WARM_THEN_HOLE, 2.0, 8.0, False, gap_starts=starts)
    assert summary.gaps == [(START + timedelta(minutes=4), START + timedelta(minutes=364))]
    assert (summary.minutes_above, summary.uncovered_minutes) == (4.0, 360.0)
    # The excursion ends at the last reading before the hole, not six hours later.
    [excursion] = find_excursions(WARM_THEN_HOLE, 2.0, 8.0, summary.gaps)
    assert (excursion.start, excursion.end, excursion.minutes, excursion.ongoing) == (
        START,
        START + timedelta(minutes=4),
        4.0,
        False,
    )
    # Without the gap the hole would be six hours above the limit: the finding the rule fixes.
    [bridged] = find_excursions(WARM_THEN_HOLE, 2.0, 8.0)
    assert bridged.minutes == 364.0


def test_the_chart_shades_a_gap_and_breaks_the_line():
    starts = [s for s, _e in find_gaps([ts.timestamp() for ts, _ in WARM_THEN_HOLE], None, 3.0)]
    summary = summarise(WARM_THEN_HOLE, 2.0, 8.0, False, gap_starts=starts)
    leg = TemperatureLeg(
        shipment_id="SHP-2026-000001",
        from_site="CRX",
        to_site="USZ",
        container_id="BOX-1",
        logger_id="LGR-1",
        profile="fresh v1",
        low_c=2.0,
        high_c=8.0,
        status="in_transit",
        planned_departure=START,
        planned_arrival=START + timedelta(days=1),
        departed_at=START,
        arrived_at=None,
        received_at=None,
        units=[],
        summary=summary,
        excursions=find_excursions(WARM_THEN_HOLE, 2.0, 8.0, summary.gaps),
        temperature_alerts=[],
        alarm=True,
        readings=WARM_THEN_HOLE,
        readings_truncated=False,
    )
    svg = temperature_svg(leg, [], "Europe/Zurich")
    assert svg.count('class="gap"') == 1
    assert "no data from 10 Jan 01:04 to 10 Jan 07:04 CET" in svg
    assert svg.count('class="series"') == 2
