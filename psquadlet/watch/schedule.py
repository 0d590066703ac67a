"""When each container is checked.

A daily slot is the configured local time plus an offset inside the randomized-delay window.
The offset is derived from /etc/machine-id rather than drawn at random: a fleet of testpoints
spreads its registry traffic over the window, yet one host keeps the same slot night after
night (and across restarts), which makes its behaviour predictable to its operator.

A run that should have happened while the host was off (the last run is older than the most
recent slot) is due at once, like systemd's ``Persistent=true``.

Every function here is total: any integer >= 0 for ``randomized_delay`` and ``interval`` (the
configuration bounds them, but the schedule never relies on that) and any recorded time give
an answer, never an exception. Out-of-range values are normalised: the daily window is at most
one day (a longer delay would skip days), an interval at most ``MAX_INTERVAL``, and a last run
in the future (the clock was set back) counts as a run now.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

MACHINE_ID_PATH = "/etc/machine-id"
DAY = 86400
MAX_INTERVAL = 366 * DAY  # longer intervals are checked yearly
DEFAULT_DAILY = "03:00"


@dataclass(frozen=True)
class Schedule:
    daily: str | None = "03:00"  # local "HH:MM"
    randomized_delay: int = 3600
    interval: int | None = None  # seconds; used instead of daily when set

    def describe(self) -> str:
        if self.interval:
            return f"every {self.interval}s"
        return f"daily at {self.daily} + up to {self.randomized_delay}s"

    @property
    def window(self) -> int:
        """The randomized-delay window actually used: 0 .. one day."""
        return min(max(self.randomized_delay, 0), DAY)

    @property
    def period(self) -> int:
        """The interval actually used (interval mode): 1 s .. MAX_INTERVAL."""
        return min(max(self.interval or 0, 1), MAX_INTERVAL)


def read_machine_id(path: str = MACHINE_ID_PATH) -> str:
    """The host's id; empty when unreadable (then every host uses offset 0's hash of '')."""
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def machine_offset(window: int, machine_id: str) -> int:
    """A stable offset in [0, window) for this host."""
    if window <= 0:
        return 0
    digest = hashlib.sha256(b"psquadlet-watch:" + machine_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % window


def _parse_hhmm(text: str | None) -> dt.time:
    """The daily time; the default 03:00 for anything that is not a valid HH:MM."""
    hours, _, minutes = (text or DEFAULT_DAILY).partition(":")
    try:
        return dt.time(int(hours), int(minutes))
    except ValueError:
        return dt.time(3, 0)


def _slot(day: dt.date, at: dt.time, offset: int, tz: dt.tzinfo | None) -> float:
    start = dt.datetime.combine(day, at)
    if tz is not None:
        start = start.replace(tzinfo=tz)
    # naive datetimes are local time for .timestamp(): the host's zone, DST included
    return start.timestamp() + offset


def _day_of(t: float, tz: dt.tzinfo | None) -> dt.date:
    return dt.datetime.fromtimestamp(t, tz).date()


def last_slot(schedule: Schedule, now: float, offset: int, tz: dt.tzinfo | None = None) -> float:
    """The most recent daily slot at or before *now* (*offset* is taken modulo one day)."""
    at = _parse_hhmm(schedule.daily)
    offset %= DAY
    today = _day_of(now, tz)
    # slot(day) < day + 2 days for offset < 1 day; 4 days covers DST shifts of either sign
    for back in range(5):
        slot = _slot(today - dt.timedelta(days=back), at, offset, tz)
        if slot <= now:
            return slot
    return now - DAY  # not reached for any real zone; a total answer all the same


def next_slot(schedule: Schedule, now: float, offset: int, tz: dt.tzinfo | None = None) -> float:
    """The first daily slot strictly after *now* (*offset* is taken modulo one day)."""
    at = _parse_hhmm(schedule.daily)
    offset %= DAY
    day = _day_of(last_slot(schedule, now, offset, tz) - offset, tz)
    for ahead in range(1, 5):
        slot = _slot(day + dt.timedelta(days=ahead), at, offset, tz)
        if slot > now:
            return slot
    return now + DAY  # not reached for any real zone


def not_future(when: float, now: float, slack: float = 0.0) -> float:
    """*when*, a time this host recorded, as a comparison with *now* may use it: a time later
    than *now* + *slack* (recorded while the clock was ahead, since corrected) or NaN counts as
    *now*. The one rule for every recorded time the watcher and the notifications compare with
    the clock (last run, ``min_age``'s first sighting, quiet periods, retry times): a clock
    set a year ahead and then back never holds anything back for a year."""
    return when if when <= now + slack else now


def next_run(
    schedule: Schedule,
    last_run: float | None,
    now: float,
    machine_id: str,
    tz: dt.tzinfo | None = None,
) -> float:
    """When the next check is due; a time <= now means "run now".

    *last_run* None means the container was never checked: the first check waits for its
    slot (callers record *now* as the baseline, so that a later missed slot is noticed).
    A *last_run* after *now* (the clock was set back) counts as *now*, so checks never stall
    until that date.
    """
    if last_run is not None:
        last_run = not_future(last_run, now)
    if schedule.interval:
        base = now if last_run is None else last_run
        return base + schedule.period
    offset = machine_offset(schedule.window, machine_id)
    recent = last_slot(schedule, now, offset, tz)
    if last_run is not None and last_run < recent:
        return recent  # missed (host off or watcher stopped): due now
    return next_slot(schedule, now, offset, tz)
