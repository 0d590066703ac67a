"""Issue 10 H1/L5: the schedule is total for every accepted value, on every host, at any time."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from psquadlet.watch.schedule import DAY, MAX_INTERVAL, Schedule, last_slot, next_run

UTC = dt.timezone.utc
ZONES = [
    None,
    UTC,
    *(
        zoneinfo.ZoneInfo(z)
        for z in (
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Pacific/Chatham",
            "America/St_Johns",
            "Asia/Kathmandu",
        )
    ),
]
# 1970 .. 2200: any wall clock a host may have, including a badly set one
NOWS = st.floats(min_value=0.0, max_value=7.3e9, allow_nan=False)
DAILY = st.times().map(lambda t: f"{t.hour:02d}:{t.minute:02d}")
ANY_SECONDS = st.one_of(
    st.integers(min_value=0, max_value=10 * DAY), st.integers(min_value=0, max_value=10**30)
)


def test_a_two_day_delay_does_not_crash_last_slot() -> None:
    # the report's case: offset > 2 days pushed every slot of the last 3 days past now
    s = Schedule(daily="03:00", randomized_delay=5 * DAY)
    now = dt.datetime(2026, 11, 28, 2, 0, tzinfo=UTC).timestamp()
    for mid in (f"{i:032x}" for i in range(50)):
        assert math.isfinite(next_run(s, now - 60, now, mid, tz=UTC))


def test_a_huge_interval_or_delay_gives_a_usable_time() -> None:
    now = 1.8e9
    huge = 99999999999999999999999
    assert (
        next_run(Schedule(daily=None, interval=huge), now - 1, now, "m") == now - 1 + MAX_INTERVAL
    )
    nxt = next_run(Schedule(daily="03:00", randomized_delay=huge), None, now, "m", tz=UTC)
    assert now < nxt <= now + 2 * DAY
    dt.datetime.fromtimestamp(nxt)  # status formats it: no OverflowError


def test_a_last_run_in_the_future_does_not_stall_interval_checks() -> None:
    now = 1.8e9
    s = Schedule(daily=None, interval=3600)
    assert next_run(s, now + 300 * DAY, now, "m") <= now + 3600


def test_a_last_run_in_the_future_does_not_stall_daily_checks() -> None:
    now = 1.8e9
    s = Schedule(daily="03:00", randomized_delay=0)
    assert next_run(s, now + 300 * DAY, now, "m", tz=UTC) <= now + DAY


@settings(max_examples=400, deadline=None)
@given(
    daily=DAILY,
    delay=ANY_SECONDS,
    mid=st.text(max_size=40),
    now=NOWS,
    zone=st.sampled_from(ZONES),
    last=st.one_of(st.none(), st.floats(min_value=-1e12, max_value=1e13)),
)
def test_daily_schedule_is_total(  # noqa: PLR0917 - one per strategy
    daily: str, delay: int, mid: str, now: float, zone: dt.tzinfo | None, last: float | None
) -> None:
    s = Schedule(daily=daily, randomized_delay=delay)
    nxt = next_run(s, last, now, mid, tz=zone)
    assert math.isfinite(nxt)
    assert nxt <= now + 3 * DAY  # at most a day plus the window plus a DST shift away
    assert last_slot(s, now, delay, zone) <= now


@settings(max_examples=200, deadline=None)
@given(
    interval=ANY_SECONDS,
    now=NOWS,
    last=st.one_of(st.none(), st.floats(min_value=-1e12, max_value=1e13)),
)
def test_interval_schedule_is_total(interval: int, now: float, last: float | None) -> None:
    s = Schedule(daily=None if interval else "03:00", interval=interval)
    nxt = next_run(s, last, now, "m", tz=UTC)
    assert math.isfinite(nxt)
    assert nxt <= now + max(MAX_INTERVAL, 2 * DAY)
