#!/usr/bin/env python3
"""How a fleet's nightly checks spread: 1,000 machine ids through the real schedule code.

Each simulated host has its own random /etc/machine-id (fixed seed, so runs compare) and the
default `[containers.NAME.update]` settings (`schedule = "03:00"`, `randomized_delay = "1h"`),
all in one time zone (the worst case: a fleet across zones spreads further). Its next check
comes from `psquadlet.watch.schedule.next_run`, the function the watcher itself calls. The
checks are counted per minute of the window: the peak minute against the mean over the
window (goal: peak <= 2x mean), and the registry requests per minute that makes.

Requests per check: the watcher sends one HEAD of the tag's manifest per image. Against
Docker Hub (or GHCR) anonymously, each pass is a new process with no cached token, so that
HEAD is answered 401, the token is fetched, and the HEAD repeated: 3 requests, one of them a
HEAD that Docker Hub counts (a HEAD is not a pull). Against a registry without auth: 1.

    python bench/fleet_schedule.py [--hosts 1000] [--delay 3600] [--seed 14] [--json]

Measured, not asserted: this is not a test (tests/fleet/test_fleet_schedule.py holds the
goal for the default).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from psquadlet.model import UpdateSpec, field_defaults
from psquadlet.watch.schedule import Schedule, next_run

REQUESTS_PER_CHECK = {"docker-hub-anonymous": 3, "no-auth": 1}
MIDNIGHT = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc).timestamp()


@dataclass(frozen=True)
class Spread:
    hosts: int
    window_minutes: int
    mean_per_minute: float
    peak_per_minute: int
    peak_to_mean: float
    empty_minutes: int
    requests_per_minute_peak: dict[str, int]
    requests_per_minute_mean: dict[str, float]


def default_schedule() -> Schedule:
    """The schedule an unconfigured container gets (the model's defaults)."""
    d = field_defaults(UpdateSpec)
    return Schedule(daily=d["schedule"], randomized_delay=d["randomized_delay"])


def machine_ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(count)]


def spread(schedule: Schedule, ids: list[str]) -> Spread:
    # Last checked at midnight (after yesterday's slot): the next run is tonight's slot.
    last = MIDNIGHT
    assert schedule.daily == "03:00", "the window start below assumes 03:00"
    times = [next_run(schedule, last, MIDNIGHT, mid, tz=dt.timezone.utc) for mid in ids]
    start = MIDNIGHT + 3 * 3600  # the window opens at the schedule's time
    per_minute = collections.Counter(int((t - start) // 60) for t in times)
    window = max(1, (schedule.window + 59) // 60)
    counts = [per_minute.get(m, 0) for m in range(window)]
    mean = len(ids) / window
    peak = max(counts)
    return Spread(
        hosts=len(ids),
        window_minutes=window,
        mean_per_minute=round(mean, 2),
        peak_per_minute=peak,
        peak_to_mean=round(peak / mean, 2),
        empty_minutes=counts.count(0),
        requests_per_minute_peak={k: peak * n for k, n in REQUESTS_PER_CHECK.items()},
        requests_per_minute_mean={k: round(mean * n, 1) for k, n in REQUESTS_PER_CHECK.items()},
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--delay", type=int, default=None, help="randomized_delay in seconds")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    schedule = default_schedule()
    if args.delay is not None:
        schedule = Schedule(daily=schedule.daily, randomized_delay=args.delay)
    result = spread(schedule, machine_ids(args.hosts, args.seed))
    if args.json:
        print(json.dumps({"schedule": schedule.describe(), **asdict(result)}, indent=2))
    else:
        print(f"schedule: {schedule.describe()}, {result.hosts} hosts")
        print(
            f"window: {result.window_minutes} min, mean {result.mean_per_minute}/min, "
            f"peak {result.peak_per_minute}/min ({result.peak_to_mean}x the mean), "
            f"{result.empty_minutes} empty minutes"
        )
        for kind, n in REQUESTS_PER_CHECK.items():
            print(
                f"registry requests/min ({kind}, {n} per check): "
                f"mean {result.requests_per_minute_mean[kind]}, "
                f"peak {result.requests_per_minute_peak[kind]}"
            )
    return 0 if result.peak_to_mean <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
