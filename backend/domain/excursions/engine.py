"""The excursion rules engine: a fold over one shipment leg's readings in time order. Pure.

Each reading stands for the time until the next one (the last for none yet), so time beyond a limit is
what the samples show, to one sample interval. An interval longer than `gap_factor` times the logger's
expected interval (declared, else the shortest seen so far) is a data gap (issue 20, finding 3): no
reading says what happened in it, so it counts neither in nor out of range, does not advance a
consecutive or instant rule, and is reported as a `data_gap` notice.

Feeding readings in chunks gives the same state as feeding them at once: that is what lets the service
carry a leg's state from batch to batch, and recompute from the first reading whenever a backlog lands
before what it already folded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.domain.excursions import signals
from backend.domain.excursions.profiles import SEVERITY_RANK, Rule, RuleSet
from backend.domain.excursions.state import (
    DATA_GAP,
    DEFAULT_GAP_FACTOR,
    TEMPERATURE_HIGH,
    TEMPERATURE_LOW,
    Band,
    EngineState,
    Episode,
    Reading,
    Track,
    fire,
)

_SIDES = {"high": TEMPERATURE_HIGH, "low": TEMPERATURE_LOW}


def beyond(limit: str, threshold: float, temp_c: float) -> bool:
    return temp_c > threshold if limit.endswith("high") else temp_c < threshold


def back_inside(limit: str, threshold: float, temp_c: float, hysteresis: float) -> bool:
    return temp_c <= threshold - hysteresis if limit.endswith("high") else temp_c >= threshold + hysteresis


def _side_of(limit: str) -> str:
    return "high" if limit.endswith("high") else "low"


class Engine:
    """Wraps one leg's state. `planned_arrival` (unix seconds) feeds the predictive rule; `time_zone`
    (IANA) is where the calendar days of the per-day rules and of the daily summary begin."""

    def __init__(
        self,
        rules: RuleSet,
        planned_arrival: float | None,
        state: EngineState | None = None,
        *,
        expected_interval_s: float | None = None,
        gap_factor: float = DEFAULT_GAP_FACTOR,
        time_zone: str = "UTC",
    ):
        self.rules = rules
        self._zone = UTC if time_zone == "UTC" else ZoneInfo(time_zone)
        self._day_cache: tuple[float, float, str] | None = None
        rolling = [r for r in rules.rules if r.window == "rolling"]
        self._rolling = _rolling_limits(rolling, rules.limits)
        self._longest_window = max((r.window_s for r in rolling), default=0.0)
        self.planned_arrival = planned_arrival
        self.expected_interval_s = expected_interval_s
        self.gap_factor = gap_factor
        self.state = state if state is not None else EngineState()
        for name in rules.limits:
            self.state.bands.setdefault(name, Band())
        self._primary = _primary_bands(rules.limits)
        for side in self._primary:
            self.state.tracks.setdefault(_SIDES[side], Track())
        self._by_side = _rules_by_side(rules.rules, self._primary)

    # -- feeding -----------------------------------------------------------------------------------

    def feed(self, readings: Iterable[Reading]) -> None:
        """Readings in ascending time; one at or before the last folded is ignored (the service
        recomputes from scratch when a backlog lands in the past)."""
        for reading in readings:
            last = self.state.last
            if self.state.closed or (last is not None and reading.t <= last.t):
                continue
            self._step(reading)

    def _step(self, r: Reading) -> None:
        s = self.state
        s.last_days.clear()
        if s.last is not None:
            if self._is_gap(r.t - s.last.t):
                self._gap(s.last.t, r.t)
            else:
                self._account(s.last, r.t)
                for side in self._primary:
                    self._evaluate(side, r.t, interval=True)
            dt = r.t - s.last.t
            if s.learned_interval_s is None or dt < s.learned_interval_s:
                s.learned_interval_s = dt
        else:
            s.first_t = r.t
        self._apply(r)
        signals.step(self, r)
        s.last = r
        s.readings += 1

    def _is_gap(self, dt: float) -> bool:
        interval = self.expected_interval_s or self.state.learned_interval_s
        return interval is not None and dt > self.gap_factor * interval

    def _gap(self, start: float, end: float) -> None:
        """No data from `start` to `end`: kept and noticed, never counted as the previous reading."""
        s = self.state
        s.gaps.append((start, end))
        s.uncovered_s += end - start
        for band in s.bands.values():
            if band.active:
                band.gap_s += end - start
            if band.run_start is not None:
                band.run_gap_s += end - start
        minutes = (end - start) / 60
        s.finished.append(
            Episode(
                kind=DATA_GAP,
                start=start,
                end=end,
                severity="info",
                fired_at=end,
                escalated_at=None,
                peak=None,
                minutes_beyond=minutes,
                rules=("gap",),
                note=f"no data from {_stamp(start)} to {_stamp(end)} ({minutes:.0f} min)",
            )
        )

    def _account(self, prev: Reading, t: float) -> None:
        """The interval [prev.t, t) carries prev's temperature."""
        dt = t - prev.t
        for name, band in self.state.bands.items():
            if beyond(name, self.rules.limits[name], prev.temp_c):
                band.total_s += dt
                if band.active:
                    band.episode_s += dt
                self._add_daily(name, prev.t, t)
                if name in self._rolling:
                    self._add_span(name, prev.t, t)

    def _day_span(self, t: float) -> tuple[float, float, str]:
        """The calendar day holding `t` in the engine's zone: its start, its end (23 or 25 h later on a
        day the clocks change) and its name."""
        cached = self._day_cache
        if cached is not None and cached[0] <= t < cached[1]:
            return cached
        day = datetime.fromtimestamp(t, self._zone).date()
        start = datetime.combine(day, time(), self._zone).timestamp()
        end = datetime.combine(day + timedelta(days=1), time(), self._zone).timestamp()
        self._day_cache = cached = (start, end, day.isoformat())
        return cached

    def _add_daily(self, name: str, start: float, end: float) -> None:
        days = self.state.last_days
        while start < end:
            _lo, midnight, day = self._day_span(start)
            upto = min(end, midnight)
            per_day = self.state.daily.setdefault(day, {})
            per_day[name] = per_day.get(name, 0.0) + (upto - start)
            if day not in days:
                days.append(day)
            start = upto

    def _add_span(self, name: str, start: float, end: float) -> None:
        spans = self.state.spans.setdefault(name, [])
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
        horizon = end - self._longest_window
        while spans and spans[0][1] <= horizon:
            spans.pop(0)

    def _apply(self, r: Reading) -> None:
        hysteresis = self.rules.definition.hysteresis_c
        for name, band in self.state.bands.items():
            threshold = self.rules.limits[name]
            if beyond(name, threshold, r.temp_c):
                if not band.active:
                    band.active, band.start, band.episode_s, band.gap_s = True, r.t, 0.0, 0.0
                if band.run_start is None:
                    band.run_start, band.run_gap_s = r.t, 0.0
            else:
                band.run_start = None
                if band.active and back_inside(name, threshold, r.temp_c, hysteresis):
                    band.active = False
        for side, primary in self._primary.items():
            band = self.state.bands[primary]
            track = self.state.tracks[_SIDES[side]]
            if band.active and not track.active:
                self.state.tracks[_SIDES[side]] = track = Track(active=True, start=band.start, peak=r.temp_c)
            if track.active:
                track.peak = _peak(side, track.peak, r.temp_c)
                self._evaluate(side, r.t, interval=False)
                if not band.active:
                    self.finish_track(_SIDES[side], r.t)

    # -- rules -------------------------------------------------------------------------------------

    def _evaluate(self, side: str, t: float, interval: bool) -> None:
        """`interval`: the time up to `t` was just counted, the reading at `t` not yet applied; instant
        rules look at readings only, so they wait for the reading itself."""
        track = self.state.tracks[_SIDES[side]]
        if not track.active:
            return
        for rule in self._by_side[side]:
            if rule.id in track.fired or (interval and rule.kind == "instant"):
                continue
            if self._holds(rule, t):
                fire(track, rule.id, rule.severity, t)

    def _holds(self, rule: Rule, t: float) -> bool:
        """Whether the time beyond the rule's limit, as its window and kind count it, reached its delay."""
        if rule.window in _WINDOWED:
            measure = _WINDOWED[rule.window]
        elif rule.limit == "range":
            measure = Engine._range_total_s
        else:
            measure = _BAND_MEASURES.get(rule.kind, Engine._band_total_s)
        beyond_s = measure(self, rule, t)
        return beyond_s is not None and beyond_s >= rule.delay_s

    def _limit_names(self, rule: Rule) -> list[str]:
        return (
            [n for n in ("low", "high") if n in self.state.bands] if rule.limit == "range" else [rule.limit]
        )

    def _worst_day_s(self, rule: Rule, t: float) -> float:
        # The day of `t` and the days the last interval touched: an interval may end just past midnight.
        days = {self._day_span(t)[2], *self.state.last_days}
        daily, names = self.state.daily, self._limit_names(rule)
        return max(sum(daily.get(d, {}).get(n, 0.0) for n in names) for d in days)

    def _rolling_s(self, rule: Rule, t: float) -> float:
        since, spans = t - rule.window_s, self.state.spans
        return sum(
            min(end, t) - max(start, since)
            for n in self._limit_names(rule)
            for start, end in spans.get(n, ())
            if end > since and start < t
        )

    def _range_total_s(self, rule: Rule, t: float) -> float:
        return sum(self.state.bands[name].total_s for name in self._limit_names(rule))

    def _run_s(self, rule: Rule, t: float) -> float | None:
        """An instant rule counts the readings beyond the limit without a break (None: not beyond)."""
        band = self.state.bands[rule.limit]
        return None if band.run_start is None else t - band.run_start - band.run_gap_s

    def _episode_s(self, rule: Rule, t: float) -> float | None:
        """A consecutive rule counts the episode, from its start (None: no episode)."""
        band = self.state.bands[rule.limit]
        return t - band.start - band.gap_s if band.active else None

    def _band_total_s(self, rule: Rule, t: float) -> float:
        return self.state.bands[rule.limit].total_s

    # -- episodes ----------------------------------------------------------------------------------

    def finish_track(self, kind: str, end: float) -> None:
        track = self.state.tracks[kind]
        if track.active and track.severity is not None:
            self.state.finished.append(self.episode(kind, track, end))
        self.state.tracks[kind] = Track()

    def episode(self, kind: str, track: Track, end: float | None) -> Episode:
        assert track.severity is not None
        assert track.fired_at is not None
        minutes = 0.0
        side = {TEMPERATURE_HIGH: "high", TEMPERATURE_LOW: "low"}.get(kind)
        if side is not None:
            minutes = self.state.bands[self._primary[side]].episode_s / 60
        elif end is not None:
            minutes = (end - track.start) / 60
        elif self.state.last is not None:
            minutes = (self.state.last.t - track.start) / 60
        return Episode(
            kind=kind,
            start=track.start,
            end=end,
            severity=track.severity,
            fired_at=track.fired_at,
            escalated_at=track.escalated_at,
            peak=track.peak,
            minutes_beyond=minutes,
            rules=tuple(track.fired),
            note=track.note,
        )

    def close(self, at: float) -> None:
        """The leg is over (the shipment was received): every episode in progress ends at `at`, so a
        logger that is lost cannot leave an alert that never ends."""
        if self.state.closed:
            return
        end = max(at, self.state.last.t) if self.state.last is not None else at
        for kind, track in list(self.state.tracks.items()):
            if track.active:
                self.finish_track(kind, end)
        self.state.closed = True

    def drain(self) -> list[Episode]:
        """Episodes that ended since the last drain, then those in progress that fired, oldest first."""
        out = self.state.finished
        self.state.finished = []
        ongoing = [
            self.episode(kind, track, None)
            for kind, track in self.state.tracks.items()
            if track.active and track.severity is not None
        ]
        return sorted(out, key=lambda e: e.start) + sorted(ongoing, key=lambda e: e.start)

    # -- summaries ---------------------------------------------------------------------------------

    def uncovered_minutes(self) -> float:
        return self.state.uncovered_s / 60

    def minutes_beyond(self) -> dict[str, float]:
        return {name: band.total_s / 60 for name, band in self.state.bands.items()}

    def daily_minutes(self) -> dict[str, dict[str, float]]:
        return {
            day: {name: seconds / 60 for name, seconds in limits.items()}
            for day, limits in sorted(self.state.daily.items())
        }


# How each rule counts its time beyond the limit: rules with a window by that window, the others by kind.
_Measure = Callable[[Engine, Rule, float], float | None]
_WINDOWED: dict[str, _Measure] = {"day": Engine._worst_day_s, "rolling": Engine._rolling_s}
_BAND_MEASURES: dict[str, _Measure] = {"instant": Engine._run_s, "consecutive": Engine._episode_s}


def _rolling_limits(rolling: list[Rule], limits: Mapping[str, float]) -> set[str]:
    """Limits whose time beyond a rolling rule counts (both warning limits for a `range` rule)."""
    return {
        name
        for r in rolling
        for name in (("low", "high") if r.limit == "range" else (r.limit,))
        if name in limits
    }


def _primary_bands(limits: Mapping[str, float]) -> dict[str, str]:
    """The band that opens and ends a side's episode: its warning limit, else its critical one."""
    return {
        side: name
        for side in ("high", "low")
        for name in (side, f"critical_{side}")
        if name in limits and (name == side or side not in limits)
    }


def _rules_by_side(rules: Iterable[Rule], sides: Iterable[str]) -> dict[str, list[Rule]]:
    by_side: dict[str, list[Rule]] = {side: [] for side in sides}
    # Most severe first: when several rules hold at one reading the alert opens at that severity.
    for rule in sorted(rules, key=lambda r: -SEVERITY_RANK[r.severity]):
        for side in ("high", "low") if rule.limit == "range" else (_side_of(rule.limit),):
            if side in by_side:
                by_side[side].append(rule)
    return by_side


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _peak(side: str, peak: float | None, temp_c: float) -> float:
    if peak is None:
        return temp_c
    return max(peak, temp_c) if side == "high" else min(peak, temp_c)
