"""Issue 20, alarm states (findings 1, 2, 6 and 8): escalation always raises, critical alerts latch until
acknowledged, acknowledgements add up, and a dry shipper's predictive warning hands over to the critical
alert without a gap."""

from __future__ import annotations

import pytest
from excursion_cases import CRYO, FRESH, T0, engine, minutes, run, series

from backend.domain import alarm_states
from backend.domain.errors import Conflict
from backend.domain.excursions import Episode, ExistingAlert, Open, Retire, Update, plan


def episode(start: float, end: float | None = None, severity: str = "warning") -> Episode:
    return Episode("temperature_high", start, end, severity, start, None, 9.0, 10.0, ("r",), "")


def alert(
    alert_id: int, start: float, status: str = "open", severity: str = "warning", **extra
) -> ExistingAlert:
    values = {"peak_value": 9.0, "minutes_beyond": 10.0, "kind": "temperature_high", "ended_at": None}
    return ExistingAlert(alert_id, status=status, severity=severity, started_at=start, **{**values, **extra})


# -- finding 1: closing a warning does not suppress the critical alarm --------------------------------


def test_finding_1_the_engine_escalates_the_12_degree_warning_to_critical_at_20_degrees():
    # A fresh leg whose cumulative budget is spent: 12 °C warns, then 20 °C for 12 minutes is critical.
    spent = {**FRESH, "cumulative_minutes": 0}
    [warned] = run(spent, series([5, 12, 12, 12]))
    assert (warned.severity, minutes(warned.start)) == ("warning", 1.0)
    [escalated] = run(spent, series([5, 12, 12, 12] + [20] * 12))
    assert escalated.severity == "critical"
    assert escalated.start == warned.start
    assert minutes(escalated.escalated_at) == 4.0


def test_finding_1_a_closed_warning_whose_episode_turns_critical_raises_a_new_critical_alert():
    critical = episode(100, severity="critical")
    closed = alert(3, 100, status="closed", ended_at=150.0)
    assert plan([critical], [closed], full=False) == [Open(critical, escalates=3)]
    # Once raised, the critical alert speaks for the episode; the closed warning stays closed.
    raised = alert(4, 100, severity="critical")
    assert plan([critical], [closed, raised], full=False) == []
    assert plan([critical], [closed, raised], full=True) == []
    # Its end resolves (or latches) the critical alert, never the closed warning.
    ended = episode(100, end=900, severity="critical")
    assert plan([ended], [closed, raised], full=False) == [Update(4, ended, escalate=False, resolve=True)]


def test_finding_1_a_closed_alert_of_the_same_severity_stays_closed():
    assert plan([episode(100)], [alert(3, 100, status="closed")], full=False) == []
    critical = episode(100, severity="critical")
    assert plan([critical], [alert(3, 100, status="closed", severity="critical")], full=False) == []


# -- finding 2: a critical excursion that ends by itself latches ----------------------------------------


@pytest.mark.parametrize(
    ("status", "severity", "reopened", "expected"),
    [
        ("open", "critical", False, "cleared_unacknowledged"),
        ("acknowledged", "critical", False, "resolved"),
        # An escalation asks for a new acknowledgement: ending at once still latches.
        ("acknowledged", "critical", True, "cleared_unacknowledged"),
        ("open", "warning", False, "resolved"),
        ("closed", "critical", False, "closed"),
    ],
)
def test_finding_2_the_status_an_alert_takes_when_its_condition_clears(status, severity, reopened, expected):
    assert alarm_states.when_cleared(status, severity, reopened=reopened) == expected


def test_finding_2_a_backlog_that_shows_an_ended_critical_excursion_raises_it_latched():
    assert alarm_states.when_raised_cleared("critical") == "cleared_unacknowledged"
    assert alarm_states.when_raised_cleared("warning") == "resolved"


def test_finding_2_a_latched_alert_is_matched_not_resolved_again_and_withdrawn_when_not_borne_out():
    ended = episode(100, end=900, severity="critical")
    latched = alert(5, 100, status="cleared_unacknowledged", severity="critical", ended_at=900.0)
    assert plan([ended], [latched], full=False) == []
    # Found by overlap when a backlog moved the start earlier.
    earlier = episode(40, end=900, severity="critical")
    assert plan([earlier], [latched], full=False) == [Update(5, earlier, escalate=False, resolve=False)]
    assert plan([], [latched], full=True) == [Retire(5)]


def test_finding_2_the_latched_state_needs_attention_and_acknowledging_it_resolves_it():
    assert "cleared_unacknowledged" in alarm_states.NEEDS_ATTENTION
    assert "cleared_unacknowledged" not in alarm_states.ACTIVE  # a new episode may open meanwhile
    assert alarm_states.when_acknowledged(1, "cleared_unacknowledged") == "resolved"


# -- finding 6: acknowledgements are a history ----------------------------------------------------------


def test_finding_6_a_second_acknowledgement_is_accepted_and_resolved_or_closed_ones_are_refused():
    assert alarm_states.when_acknowledged(1, "open") == "acknowledged"
    assert alarm_states.when_acknowledged(1, "acknowledged") == "acknowledged"
    for status in ("resolved", "closed"):
        with pytest.raises(Conflict):
            alarm_states.when_acknowledged(1, status)
        with pytest.raises(Conflict):
            alarm_states.check_closable(1, status)
    alarm_states.check_closable(1, "cleared_unacknowledged")


# -- finding 8: the LN2 predictive warning stays until the critical alert opens ---------------------------


def test_finding_8_a_dry_shipper_past_the_limit_is_never_without_an_open_temperature_alert():
    # -190 °C warming by 0.5 °C a minute crosses -150 °C at minute 80; the critical rule needs 5 minutes.
    warming = [-190 + 0.5 * i for i in range(82)] + [-149.0] * 10
    e = engine(CRYO, planned_arrival=T0 + 3 * 3600)
    predicted_from = critical_from = None
    for reading in series(warming):
        e.feed([reading])
        ongoing = {ep.kind: ep for ep in e.drain() if ep.end is None}
        if "predicted_excursion" in ongoing and predicted_from is None:
            predicted_from = reading.t
        if "temperature_high" in ongoing and critical_from is None:
            critical_from = reading.t
        if predicted_from is not None:
            assert ongoing, f"no open temperature alert at minute {minutes(reading.t):g}"
        if critical_from is not None:
            assert set(ongoing) == {"temperature_high"}  # handed over, not both
    assert predicted_from is not None
    assert critical_from is not None
    assert minutes(critical_from) == pytest.approx(86.0)


def test_finding_8_back_in_range_ends_the_predictive_warning_as_before():
    warming = [-190 + 0.5 * i for i in range(40)]
    cooled = warming + [-190.0] * 60
    episodes = run(CRYO, series(cooled), planned_arrival=T0 + 3 * 3600)
    assert [(ep.kind, ep.end is not None) for ep in episodes] == [("predicted_excursion", True)]
