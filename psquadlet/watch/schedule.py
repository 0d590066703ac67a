"""When each container is checked.

A daily slot is the configured local time plus an offset inside the randomized-delay window.
The offset is derived from /etc/machine-id rather than drawn at random: a fleet of testpoints
spreads its registry traffic over the window, yet one host keeps the same slot night after
night (and across restarts), which makes its behaviour predictable to its operator.

A run that should have happened while the host was off (the last run is older than the most
recent slot) is due at once, like systemd's ``Persistent=true``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

MACHINE_ID_PATH = "/etc/machine-id"
DAY = 86400


@dataclass(frozen=True)
class Schedule:
    daily: str | None = "03:00"  # local "HH:MM"
    randomized_delay: int = 3600
    interval: int | None = None  # seconds; used instead of daily when set

    def describe(self) -> str:
        if self.interval:
            return f"every {self.interval}s"
        return f"daily at {self.daily} + up to {self.randomized_delay}s"


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


def _parse_hhmm(text: str) -> dt.time:
    hours, _, minutes = text.partition(":")
    return dt.time(int(hours), int(minutes))


def _slot(day: dt.date, at: dt.time, offset: int, tz: dt.tzinfo | None) -> float:
    start = dt.datetime.combine(day, at)
    if tz is not None:
        start = start.replace(tzinfo=tz)
    # naive datetimes are local time for .timestamp(): the host's zone, DST included
    return start.timestamp() + offset


def last_slot(schedule: Schedule, now: float, offset: int, tz: dt.tzinfo | None = None) -> float:
    """The most recent daily slot at or before *now*."""
    assert schedule.daily is not None
    at = _parse_hhmm(schedule.daily)
    today = dt.datetime.fromtimestamp(now, tz).date()
    for back in range(3):  # offset can push a slot past midnight: look back far enough
        slot = _slot(today - dt.timedelta(days=back), at, offset, tz)
        if slot <= now:
            return slot
    raise AssertionError("unreachable: a slot within three days")


def next_slot(schedule: Schedule, now: float, offset: int, tz: dt.tzinfo | None = None) -> float:
    """The first daily slot strictly after *now*."""
    assert schedule.daily is not None
    at = _parse_hhmm(schedule.daily)
    day = dt.datetime.fromtimestamp(last_slot(schedule, now, offset, tz) - offset, tz).date()
    for ahead in range(1, 4):
        slot = _slot(day + dt.timedelta(days=ahead), at, offset, tz)
        if slot > now:
            return slot
    raise AssertionError("unreachable: a slot within three days")


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
    """
    if schedule.interval:
        base = now if last_run is None else last_run
        return base + schedule.interval
    offset = machine_offset(schedule.randomized_delay, machine_id)
    recent = last_slot(schedule, now, offset, tz)
    if last_run is not None and last_run < recent:
        return recent  # missed (host off or watcher stopped): due now
    return next_slot(schedule, now, offset, tz)
