"""A clock set a year ahead and then corrected (issue 17 item 9): times recorded while it was
ahead count as now (``schedule.not_future``), so nothing is held back for a year and no age
is negative. Fake clocks throughout; the outbox is the real one in a temporary folder."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from watchfakes import IMAGE, NEW, world

from psquadlet.imageref import parse
from psquadlet.notifications.deliver import Notifier
from psquadlet.notifications.outbox import BACKOFF_MAX
from psquadlet.notifications.settings import Channel, NotificationSettings
from psquadlet.watch import core
from psquadlet.watch.events import Event, EventKind
from psquadlet.watch.schedule import Schedule, next_run, not_future
from psquadlet.watch.targets import Target

YEAR = 366 * 86400
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("when", "slack", "seen"),
    [
        (NOW - 5, 0, NOW - 5),
        (NOW, 0, NOW),
        (NOW + 1, 0, NOW),
        (NOW + YEAR, 0, NOW),
        (NOW + 60, 3600, NOW + 60),
        (NOW + 3601, 3600, NOW),
        (math.nan, 0, NOW),
        (math.inf, 0, NOW),
    ],
)
def test_not_future(when: float, slack: float, seen: float) -> None:
    assert not_future(when, NOW, slack) == seen


def test_a_schedule_run_recorded_a_year_ahead_is_due_by_the_next_slot() -> None:
    every_hour = Schedule(daily=None, interval=3600)
    assert next_run(every_hour, NOW + YEAR, NOW, "") == NOW + 3600


def test_min_age_first_seen_a_year_ahead_counts_from_the_correction() -> None:
    w = world()
    t = Target(
        name="perfsonar-testpoint",
        unit="perfsonar-testpoint.service",
        container="pt",
        image=parse(IMAGE),
        schedule=Schedule(),
        min_age=3600,
    )
    w.clock.t += YEAR  # the clock runs a year ahead: NEW is first seen "next year"
    (o,) = core.run_pass((t,), w.deps).outcomes
    assert o.action == core.HELD_BACK
    w.clock.t -= YEAR  # corrected
    (o,) = core.run_pass((t,), w.deps).outcomes
    assert o.action == core.HELD_BACK
    assert "first seen 0s ago" in o.message  # was "first seen -31622400s ago"
    assert w.store.state.get(t.name).seen_since == w.clock.t
    w.clock.t += 3600  # min_age after the correction, not a year
    (o,) = core.run_pass((t,), w.deps).outcomes
    assert o.action == core.UPGRADED
    assert o.running_digest == NEW


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def notifier(tmp_path: Path, clock: Clock, quiet: int = 86400) -> Notifier:
    # no URL for the channel: a flush fails at once, without a sender process or a network
    settings = NotificationSettings(
        channels=(Channel("hook"),), hostname="lab1", quiet_period=quiet
    )
    return Notifier(settings, tmp_path, {}, clock=clock)


def failing(at: float) -> Event:
    return Event(
        EventKind.CHECK_FAILING,
        "perfsonar-testpoint",
        "perfsonar-testpoint.service",
        IMAGE,
        at,
    )


def test_a_repeat_recorded_a_year_ahead_is_quiet_for_one_quiet_period_not_a_year(
    tmp_path: Path,
) -> None:
    clock = Clock()
    n = notifier(tmp_path, clock)
    box = n.outbox(n.settings.channels[0])
    clock.now = NOW + YEAR
    n.emit(failing(clock.now))
    assert len(box.read().pending) == 1
    clock.now = NOW  # corrected
    n.emit(failing(clock.now))  # a repeat within the quiet period, counted from now
    assert len(box.read().pending) == 1
    clock.now += 86400
    n.emit(failing(clock.now))  # one quiet period later: news again (was held a year)
    assert len(box.read().pending) == 2


def test_a_retry_time_set_a_year_ahead_is_due_now(tmp_path: Path) -> None:
    clock = Clock()
    n = notifier(tmp_path, clock)
    clock.now = NOW + YEAR
    n.emit(failing(clock.now))
    (first,) = n.flush()
    assert first.error == "no URL for this channel"
    (wait,) = n.flush()  # the back-off holds, as it should
    assert wait.note.startswith("1 queued, next try in")
    clock.now = NOW  # corrected: the retry was set by a clock a year ahead
    (again,) = n.flush()
    assert again.error == "no URL for this channel", again  # tried, not "next try in 3e7 s"
    (wait,) = n.flush()
    assert wait.note.startswith("1 queued, next try in")
    assert int(wait.note.split()[-2]) <= BACKOFF_MAX
