"""The record's temperature chart: time ticks on round times, each label distinct and readable, for legs
from a minute to several days long."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from backend.reports.chart import tick_labels, time_ticks

START = datetime(2026, 12, 3, 13, 58, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    "span",
    [
        timedelta(seconds=50),
        timedelta(minutes=3),
        timedelta(minutes=15),
        timedelta(minutes=50),
        timedelta(hours=7),
        timedelta(days=2, hours=5),
        timedelta(days=40),
    ],
)
def test_ticks_are_round_few_in_range_and_their_labels_distinct(span):
    end = START + span
    ticks = time_ticks(START, end)
    assert 2 <= len(ticks) <= 6
    assert all(START <= t <= end for t in ticks)
    steps = {(b - a) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    labels = tick_labels(ticks)
    assert len(set(labels)) == len(labels), labels
    # Round times: no tick falls on the odd second the readings started.
    assert all(t.second == 0 for t in ticks) or span < timedelta(minutes=1)
    assert labels[0].startswith(ticks[0].strftime("%d %b"))


def test_a_short_leg_is_labelled_in_seconds_and_the_day_is_named_where_it_changes():
    labels = tick_labels(time_ticks(START, START + timedelta(seconds=50)))
    assert all(label.count(":") == 2 for label in labels)
    late = datetime(2026, 12, 3, 22, 10, tzinfo=UTC)
    labels = tick_labels(time_ticks(late, late + timedelta(hours=5)))
    assert [label for label in labels if "Dec" in label] == [
        labels[0],
        next(x for x in labels if "04 Dec" in x),
    ]
