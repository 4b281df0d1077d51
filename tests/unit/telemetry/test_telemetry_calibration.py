"""The calibration rule: the due date is the last day a logger may be trusted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from backend.services.loggers import calibration_problem

DUE = date(2026, 3, 31)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 3, 30, 12, 0, tzinfo=UTC), None),
        (datetime(2026, 3, 31, 23, 59, tzinfo=UTC), None),
        (
            datetime(2026, 4, 1, 0, 0, tzinfo=UTC),
            "logger LGR-0001 was due for calibration on 2026-03-31 (1 days ago)",
        ),
        # 00:30 on 1 April in Zurich is still 31 March in UTC, the calendar the due date is kept in.
        (datetime(2026, 4, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))), None),
    ],
)
def test_due_date_is_the_last_good_day(when, expected):
    assert calibration_problem("LGR-0001", DUE, when) == expected


def test_a_logger_without_a_due_date_is_not_trusted():
    problem = calibration_problem("LGR-0002", None, datetime(2026, 1, 1, tzinfo=UTC))
    assert problem == "logger LGR-0002 has no calibration due date on record"
