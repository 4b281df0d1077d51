"""The reconciliation plan: which alert stands for which episode, and what changes."""

from __future__ import annotations

from backend.domain.excursions import Episode, ExistingAlert, Open, Retire, Update, plan


def episode(
    start: float, end: float | None = None, severity: str = "warning", kind: str = "temperature_high"
):
    return Episode(kind, start, end, severity, start, None, 9.0, 10.0, ("r",), "")


def alert(alert_id: int, start: float, status: str = "open", ended: float | None = None, **extra):
    values = {"severity": "warning", "peak_value": 9.0, "minutes_beyond": 10.0, "kind": "temperature_high"}
    return ExistingAlert(alert_id, status=status, started_at=start, ended_at=ended, **{**values, **extra})


def test_a_new_episode_opens_an_alert_and_an_unchanged_one_does_nothing():
    assert plan([episode(100)], [], full=False) == [Open(episode(100))]
    assert plan([episode(100)], [alert(1, 100)], full=False) == []


def test_escalation_and_end_update_the_same_alert():
    assert plan([episode(100, severity="critical")], [alert(1, 100)], full=False) == [
        Update(1, episode(100, severity="critical"), escalate=True, resolve=False)
    ]
    assert plan([episode(100, end=400)], [alert(1, 100)], full=False) == [
        Update(1, episode(100, end=400), escalate=False, resolve=True)
    ]


def test_a_backlog_that_moves_the_start_earlier_finds_the_open_alert_by_overlap():
    assert plan([episode(40)], [alert(7, 100)], full=False) == [Update(7, episode(40), False, False)]


def test_an_alert_a_coordinator_closed_is_not_reopened_for_its_episode():
    assert plan([episode(100)], [alert(3, 100, status="closed", ended=150)], full=False) == []


def test_the_next_episode_opens_after_the_previous_alert_resolves():
    actions = plan([episode(100, end=200), episode(300)], [alert(1, 100)], full=False)
    assert actions == [Update(1, episode(100, end=200), False, True), Open(episode(300))]


def test_a_full_recompute_withdraws_alerts_no_episode_bears_out():
    existing = [alert(1, 100), alert(2, 500, status="resolved", ended=600), alert(3, 700, status="closed")]
    assert plan([], existing, full=True) == [Retire(1), Retire(2)]
    assert plan([], existing, full=False) == []
    # A withdrawn alert is never matched again.
    assert plan([episode(100)], [alert(1, 100, status="closed", withdrawn=True)], full=True) == [
        Open(episode(100))
    ]
