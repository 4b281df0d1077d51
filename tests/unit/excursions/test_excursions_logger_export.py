"""A real logger's export (readings every 5 minutes, two days, a +8.0 °C limit with a 60-minute delay):
the engine's minutes above the limit per day equal what the readings imply, to one sample interval, and
exactly the excursions longer than the delay alarm."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta

from excursion_cases import engine

from backend.domain.excursions import Reading

START = datetime(2026, 3, 1, tzinfo=UTC)
SAMPLE = timedelta(minutes=5)
PROFILE = {"high_c": 8.0, "hysteresis_c": 0.5, "consecutive_minutes": 60}
# (start, length) of each excursion above 8 °C: short, just under and over the delay, long, and one
# running across midnight.
EXCURSIONS = [
    (START + timedelta(hours=3), timedelta(minutes=25)),
    (START + timedelta(hours=9, minutes=10), timedelta(minutes=55)),
    (START + timedelta(hours=14), timedelta(minutes=90)),
    (START + timedelta(hours=22, minutes=30), timedelta(hours=3)),
    (START + timedelta(days=1, hours=12), timedelta(minutes=60)),
]


def export_csv() -> str:
    """The logger's CSV as its software writes it: a header block, then one line per sample in local
    notation (day.month.year, decimal comma), temperatures with sensor noise."""
    rnd = random.Random(42)
    out = io.StringIO()
    out.write("Logger;LGR-EXPORT1\nSerial;A1B2C3\nInterval;00:05:00\n\n")
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(["No.", "Date/Time (UTC)", "Temperature [°C]"])
    t, n = START, 1
    while t < START + timedelta(days=2):
        inside = any(s <= t < s + length for s, length in EXCURSIONS)
        temp = rnd.uniform(8.3, 11.5) if inside else rnd.uniform(3.0, 7.2)
        writer.writerow([n, t.strftime("%d.%m.%Y %H:%M:%S"), f"{temp:.1f}".replace(".", ",")])
        t, n = t + SAMPLE, n + 1
    return out.getvalue()


def parse(text: str) -> list[Reading]:
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("No.;"))
    rows = csv.reader(lines[header + 1 :], delimiter=";")
    return [
        Reading(
            datetime.strptime(stamp, "%d.%m.%Y %H:%M:%S").replace(tzinfo=UTC).timestamp(),
            float(temp.replace(",", ".")),
        )
        for _n, stamp, temp in rows
    ]


def expected_minutes_per_day() -> dict[str, float]:
    """From the excursion plan alone: its overlap with each UTC day."""
    days: dict[str, float] = {}
    for start, length in EXCURSIONS:
        t = start
        while t < start + length:
            day = t.date().isoformat()
            midnight = datetime.combine(t.date() + timedelta(days=1), datetime.min.time(), UTC)
            upto = min(start + length, midnight)
            days[day] = days.get(day, 0.0) + (upto - t).total_seconds() / 60
            t = upto
    return days


def test_minutes_above_the_limit_per_day_match_the_export():
    readings = parse(export_csv())
    assert len(readings) == 2 * 24 * 12
    e = engine(PROFILE)
    e.feed(readings)
    found = {day: limits.get("high", 0.0) for day, limits in e.daily_minutes().items()}
    expected = expected_minutes_per_day()
    print("minutes above 8 °C per day, engine vs export plan:", found, expected)
    assert set(found) == set(expected)
    for day, minutes in expected.items():
        assert abs(found[day] - minutes) <= SAMPLE.total_seconds() / 60


def test_only_the_excursions_that_last_the_delay_alarm():
    e = engine(PROFILE)
    e.feed(parse(export_csv()))
    alarms = [(datetime.fromtimestamp(a.start, UTC), a.minutes_beyond) for a in e.drain()]
    long_enough = [
        (s, length.total_seconds() / 60) for s, length in EXCURSIONS if length >= timedelta(minutes=60)
    ]
    assert [start for start, _ in alarms] == [start for start, _ in long_enough]
    for (_, found), (_, planned) in zip(alarms, long_enough, strict=True):
        assert abs(found - planned) <= 5
