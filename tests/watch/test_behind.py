"""Staleness ("behind"): the same testpoint tag on upstream's other registry, once a day."""

from __future__ import annotations

from watchfakes import IMAGE, NEW, NEWER, world

from psquadlet.imageref import parse
from psquadlet.watch import behind, core
from psquadlet.watch.events import Event, EventKind
from psquadlet.watch.schedule import Schedule
from psquadlet.watch.targets import Target

GHCR = "ghcr.io/perfsonar/testpoint:systemd"


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def _world(image: str = IMAGE):  # type: ignore[no-untyped-def]
    w = world((("perfsonar-testpoint", "pt", image),))
    w.deps.behind_check = True
    w.deps.events = sink = Sink()
    w.registry.digests[image] = "sha256:" + "a" * 64  # what runs: nothing to upgrade
    return w, sink


def _target(image: str = IMAGE) -> Target:
    return Target("perfsonar-testpoint", "perfsonar-testpoint.service", "pt", parse(image),
                  schedule=Schedule(), policy="notify")  # fmt: skip


def test_docker_hub_behind_ghcr_is_reported_once_and_checked_once_a_day() -> None:
    w, sink = _world()
    old = "sha256:" + "a" * 64
    w.registry.digests[GHCR] = NEWER
    w.registry.created_at[old] = 1_600_000_000.0
    w.registry.created_at[NEWER] = 1_700_000_000.0
    core.run_pass((_target(),), w.deps)
    cs = w.store.state.get("perfsonar-testpoint")
    assert cs.behind.startswith(f"{GHCR} has a newer image")
    assert [e.kind for e in sink.events] == [EventKind.BEHIND]
    heads = len(w.registry.heads)
    w.clock.t += 3600
    core.run_pass((_target(),), w.deps)
    assert len(w.registry.heads) == heads + 1  # only the tag itself: the other waits a day
    w.clock.t += behind.CHECK_EVERY
    core.run_pass((_target(),), w.deps)
    assert w.registry.heads[-1] == GHCR
    assert [e.kind for e in sink.events] == [EventKind.BEHIND]  # same finding: no repeat


def test_same_digest_or_an_older_other_image_is_not_behind() -> None:
    w, sink = _world()
    w.registry.digests[GHCR] = "sha256:" + "a" * 64
    core.run_pass((_target(),), w.deps)
    assert w.store.state.get("perfsonar-testpoint").behind == ""
    assert w.registry.created_calls == []  # digests equal: no GET at all
    w, sink = _world()
    w.registry.digests[GHCR] = NEW
    w.registry.created_at["sha256:" + "a" * 64] = 1_700_000_000.0
    w.registry.created_at[NEW] = 1_600_000_000.0
    core.run_pass((_target(),), w.deps)
    assert w.store.state.get("perfsonar-testpoint").behind == ""
    assert sink.events == []


def test_only_upstream_testpoint_tags_are_compared() -> None:
    assert behind.other_upstream(parse(GHCR)) == parse(IMAGE)
    assert behind.other_upstream(parse("quay.io/perfsonar/testpoint:systemd")) is None
    assert behind.other_upstream(parse("docker.io/library/nginx:latest")) is None
