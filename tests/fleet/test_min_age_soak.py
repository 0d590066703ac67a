"""Issue 14 §3: `update.min_age` is a soak measured from when the watcher first saw a digest.

The image's build date is not the clock: a re-tag of an old build, or a reproducible build's
fixed timestamp, would make every new image look old enough at once. The first sighting is
kept in the state file, so a restarted watcher keeps counting.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from psquadlet.imageref import parse
from psquadlet.watch import core
from psquadlet.watch.schedule import Schedule
from psquadlet.watch.state import FileStateStore
from psquadlet.watch.targets import Target
from tests.watch.watchfakes import IMAGE, NEW, NEWER, World, world

DAY = 86400


def target(min_age: int) -> Target:
    return Target(
        name="perfsonar-testpoint",
        unit="perfsonar-testpoint.service",
        container="pt",
        image=parse(IMAGE),
        schedule=Schedule(),
        min_age=min_age,
    )


def run(w: World, t: Target) -> core.Outcome:
    (o,) = core.run_pass((t,), w.deps).outcomes
    return o


def test_an_old_build_is_held_back_from_when_it_was_first_seen() -> None:
    w = world()
    w.registry.created_at[NEW] = w.clock.t - 400 * DAY  # built long ago, tagged today
    t = target(3 * DAY)
    first = run(w, t)
    assert first.action == core.HELD_BACK, first.message
    assert "first seen 0s ago" in first.message
    cs = w.store.state.get("perfsonar-testpoint")
    assert (cs.seen_digest, cs.seen_since) == (NEW, w.clock.t)
    w.clock.t += 2 * DAY
    assert run(w, t).action == core.HELD_BACK
    assert w.images.calls == []  # nothing pulled while it soaks
    w.clock.t += DAY
    assert run(w, t).action == core.UPGRADED
    assert w.registry.created_calls == []  # the build date is never read


def test_a_canary_with_min_age_zero_takes_it_at_once() -> None:
    w = world()
    assert run(w, target(0)).action == core.UPGRADED


def test_a_new_digest_under_the_tag_starts_the_soak_again() -> None:
    w = world()
    t = target(DAY)
    assert run(w, t).action == core.HELD_BACK
    w.clock.t += DAY - 60
    w.registry.digests[IMAGE] = NEWER
    o = run(w, t)
    assert o.action == core.HELD_BACK
    assert "first seen 0s ago" in o.message
    w.clock.t += 120  # NEW would be old enough by now; NEWER is not
    assert run(w, t).action == core.HELD_BACK


def test_the_first_sighting_survives_in_the_state_file(tmp_path: Path) -> None:
    w = world()
    store = FileStateStore(str(tmp_path))
    w.deps = dataclasses.replace(w.deps, store=store)
    t = target(DAY)
    assert run(w, t).action == core.HELD_BACK
    seen = w.clock.t
    w.clock.t += DAY / 2
    assert run(w, t).action == core.HELD_BACK  # read back from the file: not restarted
    assert store.load().get("perfsonar-testpoint").seen_since == seen
    w.clock.t += DAY / 2
    assert run(w, t).action == core.UPGRADED
