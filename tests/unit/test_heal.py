"""The health supervisor's pure core (psquadlet.watch.heal): budget, give-up, backoff, recovery,
clock jumps, and its state file."""

from __future__ import annotations

import dataclasses
import json

import pytest

from psquadlet.watch import heal
from psquadlet.watch.events import EventKind

BUDGET = heal.Budget(restarts=3, window=3600, retry_after=3600, retry_max=86400)
SICK = heal.Observation("active", "unhealthy", "pscheduler: database unreachable")
WELL = heal.Observation("active", "healthy")
STARTING = heal.Observation("active", "starting")


class Sim:
    """Rounds of the supervisor over a fake clock; records what it did."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.state = heal.HealState()
        self.actions: list[tuple[float, str]] = []
        self.events: list[tuple[float, EventKind]] = []
        self.details: list[str] = []

    def round(self, obs: heal.Observation, budget: heal.Budget = BUDGET) -> heal.Step:
        step = heal.decide(obs, self.state, budget, self.now)
        self.state = step.state
        if step.action:
            self.actions.append((self.now, step.action))
        if step.event is not None:
            self.events.append((self.now, step.event))
            self.details.append(step.detail)
        return step

    def sick_for(self, seconds: float, every: float = 60.0) -> None:
        """The check fails for good: after each restart one round sees "starting"."""
        end = self.now + seconds
        while self.now < end:
            step = self.round(SICK)
            self.now += every
            if step.action:
                self.round(STARTING)
                self.now += every


def kinds(sim: Sim) -> list[EventKind]:
    return [k for _, k in sim.events]


def test_transient_fault_is_healed_by_one_restart() -> None:
    sim = Sim()
    step = sim.round(SICK)
    assert step.action == heal.RESTART
    assert step.event is EventKind.UNHEALTHY
    assert "database unreachable" in step.detail  # the check's output travels
    sim.now += 60
    sim.round(WELL)
    assert kinds(sim) == [EventKind.UNHEALTHY, EventKind.HEALTHY]
    assert sim.state.episode == ""


def test_budget_then_give_up_once_and_keep_running() -> None:
    sim = Sim()
    sim.sick_for(6 * 3600)
    restarts_in_first_hour = [t for t, a in sim.actions if t < 1_000_000 + 3600]
    assert len(restarts_in_first_hour) == BUDGET.restarts
    # one unhealthy (the episode's first restart), one gave-up, nothing more for six hours
    assert kinds(sim) == [EventKind.UNHEALTHY, EventKind.GAVE_UP]
    gave_up = sim.events[1][0]
    assert "keeps running, unhealthy" in sim.details[1]
    assert "database unreachable" in sim.details[1]
    # after giving up: only backoff retries, at +1h, +2h (then +4h, beyond the window here)
    retries = [t - gave_up for t, _ in sim.actions if t > gave_up]
    assert retries[0] >= 3600
    gaps = [b - a for a, b in zip(retries, retries[1:])]
    assert all(g >= 2 * 3600 for g in gaps)
    assert len(retries) <= 3


def test_backoff_doubles_up_to_the_maximum() -> None:
    budget = dataclasses.replace(BUDGET, retry_after=60, retry_max=300)
    sim = Sim()
    end = sim.now + 3 * 3600
    while sim.now < end:
        sim.round(SICK, budget)
        sim.now += 10
    gave_up = sim.events[1][0]
    retries = [t for t, _ in sim.actions if t > gave_up]
    gaps = [round(b - a, -1) for a, b in zip(retries, retries[1:])]
    assert gaps[:3] == [120, 240, 300]
    assert set(gaps[3:]) == {300}
    assert kinds(sim).count(EventKind.GAVE_UP) == 1  # no repeat: one per episode


def test_recovery_after_giving_up_reports_healthy_and_starts_afresh() -> None:
    sim = Sim()
    sim.sick_for(2 * 3600)
    assert sim.state.episode == heal.GAVE_UP
    step = sim.round(WELL)
    assert step.event is EventKind.HEALTHY
    assert sim.state.episode == ""
    assert sim.state.retry_at is None
    sim.now += 2 * 3600  # the window has passed: a fresh budget
    assert sim.round(SICK).action == heal.RESTART
    assert kinds(sim)[-1] is EventKind.UNHEALTHY


def test_restarts_inside_the_window_still_count_after_recovery() -> None:
    sim = Sim()
    for _ in range(3):
        assert sim.round(SICK).action == heal.RESTART
        sim.now += 60
        sim.round(WELL)
        sim.now += 60
    step = sim.round(SICK)  # fourth failure within the hour: the budget is spent
    assert step.action == heal.NONE
    assert step.event is EventKind.GAVE_UP


def test_podman_acting_itself_is_left_to_podman() -> None:
    sim = Sim()
    step = sim.round(dataclasses.replace(SICK, podman_acts=True))
    assert step.action == heal.NONE
    assert step.event is None
    assert "database unreachable" in sim.state.output  # kept for the stop hook


@pytest.mark.parametrize("state", ["activating", "inactive", "deactivating"])
def test_a_unit_not_active_is_systemds_business(state: str) -> None:
    step = Sim().round(heal.Observation(state))
    assert step.action == heal.NONE
    assert step.event is None


def test_systemd_giving_up_is_reported_once_and_retried_on_the_backoff() -> None:
    sim = Sim()
    failed = heal.Observation("failed", unit_result="start-limit-hit")
    step = sim.round(failed)
    assert step.event is EventKind.GAVE_UP
    assert step.action == heal.NONE
    assert "systemd gave up" in step.detail
    assert "start-limit-hit" in step.detail
    for _ in range(59):
        sim.now += 60
        assert sim.round(failed).action == heal.NONE
    sim.now += 60
    assert sim.round(failed).action == heal.START  # one hour later
    assert kinds(sim) == [EventKind.GAVE_UP]
    sim.now += 60
    sim.round(WELL)
    assert kinds(sim) == [EventKind.GAVE_UP, EventKind.HEALTHY]


def test_times_in_the_future_count_as_now() -> None:
    """The clock was a year ahead when the state was written, then corrected."""
    year = 365 * 86400.0
    sim = Sim(now=1_000_000.0 + year)
    sim.sick_for(1800)
    assert sim.state.episode == heal.GAVE_UP
    sim.now -= year  # corrected
    sim.round(SICK)  # not held back a year: the retry comes retry_after from now
    assert all(t <= sim.now for t in sim.state.restarts)
    assert sim.state.since is not None
    assert sim.state.since <= sim.now
    assert sim.state.retry_at is not None
    assert sim.state.retry_at <= sim.now + BUDGET.retry_after
    sim.now += BUDGET.retry_after
    assert sim.round(SICK).action == heal.RESTART


def test_restarts_recorded_in_the_future_still_spend_the_budget() -> None:
    now = 1_000_000.0
    st = heal.HealState(restarts=(now + 500, now + 600, now + 700), episode=heal.UNHEALTHY)
    step = heal.decide(SICK, st, BUDGET, now)
    assert step.event is EventKind.GAVE_UP  # three restarts "now": none left


def test_zero_budget_gives_up_at_once() -> None:
    step = heal.decide(SICK, heal.HealState(), dataclasses.replace(BUDGET, restarts=0), 0.0)
    assert step.action == heal.NONE
    assert step.event is EventKind.GAVE_UP


def test_state_round_trip_and_bad_shapes() -> None:
    sim = Sim()
    sim.sick_for(7200)
    text = json.dumps(heal.to_json({"tp": sim.state}))
    assert heal.from_json(json.loads(text)) == {"tp": sim.state}
    assert heal.from_json({"version": 1, "containers": {}}) == {}
    for bad in (
        [],
        {"version": 2, "containers": {}},
        {"version": True, "containers": {}},
        {"version": 1, "containers": {"tp": []}},
        {"version": 1, "containers": {"tp": {"episode": "dead"}}},
        {"version": 1, "containers": {"tp": {"restarts": ["x"]}}},
        {"version": 1, "containers": {"tp": {"retry_at": float("nan")}}},
        {"version": 1, "containers": {"tp": {"since": 1e300}}},
        {"version": 1, "containers": {"tp": {"output": 3}}},
    ):
        with pytest.raises(ValueError, match=r"."):
            heal.from_json(bad)


def test_one_gave_up_per_quiet_period_while_it_keeps_failing() -> None:
    sim = Sim()
    sim.sick_for(3 * 86400 + 3600, every=300)
    gave_ups = [t for t, k in sim.events if k is EventKind.GAVE_UP]
    assert len(gave_ups) == 4  # at the start, then one per day (the quiet period)
    assert all(b - a >= 86400 for a, b in zip(gave_ups, gave_ups[1:]))
    assert "Still unhealthy since" in sim.details[-1]
    # A shorter quiet period, but never more often than the first retry's wait.
    short = Sim()
    end = short.now + 4 * 3600
    while short.now < end:
        short.round(SICK, dataclasses.replace(BUDGET, quiet=0))
        short.now += 60
    assert [k for _, k in short.events].count(EventKind.GAVE_UP) == 4  # hourly


def test_a_failed_unit_is_reminded_once_per_quiet_period() -> None:
    sim = Sim()
    failed = heal.Observation("failed", unit_result="exit-code")
    for _ in range(2 * 24 * 12 + 1):  # two days, every 5 minutes
        sim.round(failed)
        sim.now += 300
    assert kinds(sim) == [EventKind.GAVE_UP] * 3
