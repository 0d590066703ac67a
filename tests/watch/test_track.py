"""Release tracking in a pass (psquadlet.watch.track over core), through the fakes."""

from __future__ import annotations

import dataclasses

import pytest
from watchfakes import NAME, NEW, NEWER, OLD, FakeRegistry, World, world

from psquadlet.imageref import ImageRef, parse
from psquadlet.watch import core, manual, track
from psquadlet.watch.events import Event, EventKind
from psquadlet.watch.interfaces import RegistryError
from psquadlet.watch.schedule import Schedule
from psquadlet.watch.state import PHASE_RESTARTING, ContainerState
from psquadlet.watch.targets import Target

UNIT = "perfsonar-testpoint.service"
BASE = f"{NAME}:v5.2.0-systemd"
TAGS = [
    "v5.1.4",
    "v5.2.0",
    "v5.2.0-systemd",
    "v5.2.1",
    "v5.2.1-systemd",
    "v5.3.0-rc1-systemd",
    "v5.3.0-systemd",
    "latest",
    "systemd",
]


class TagRegistry(FakeRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.tag_lists: dict[str, list[str]] = {}
        self.listings: list[str] = []

    def tags(self, repo: ImageRef) -> list[str]:
        self.listings.append(repo.name)
        if repo.name in self.fail:
            raise self.fail[repo.name]
        return list(self.tag_lists[repo.name])


class FakeOverrides:
    """A drop-in: the unit's container is then created from *image* (or its own tag)."""

    def __init__(self, w: World, works: bool = True) -> None:
        self.w = w
        self.works = works
        self.configured = dict(w.units.units)
        self.current: dict[str, str | None] = {}
        self.calls: list[tuple[str, str | None, str]] = []

    def set_image(self, unit: str, image: str | None, base: str, why: str) -> str:
        self.calls.append((unit, image, base))
        if not self.works:
            return ""
        self.current[unit] = image
        container, tagref = self.configured[unit]
        self.w.units.units[unit] = (container, image or tagref)
        return f"drop-in /etc/containers/systemd/{unit}.d/50-psquadlet-release.conf"


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def setup(image: str = BASE, works: bool = True, n: int = 1) -> tuple[World, FakeOverrides, Sink]:
    w = world(tuple((f"tp{i}" if i else "perfsonar-testpoint", f"pt{i}", image) for i in range(n)))
    reg = TagRegistry()
    reg.digests = w.registry.digests
    reg.tag_lists[NAME] = list(TAGS)
    reg.digests[f"{NAME}:v5.2.1-systemd"] = NEW
    reg.digests[f"{NAME}:v5.3.0-systemd"] = NEWER
    w.registry = reg
    w.deps.registry = reg
    for i in range(n):
        w.images.remote[f"{NAME}@{NEW}"] = f"new{i}"
    ov = FakeOverrides(w, works)
    sink = Sink()
    w.deps.overrides = ov
    w.deps.events = sink
    return w, ov, sink


def target(
    track: str = "patch", image: str = BASE, name: str = "perfsonar-testpoint", **kw: object
) -> Target:
    return Target(
        name=name,
        unit=f"{name}.service",
        container="pt0" if name == "perfsonar-testpoint" else f"pt{name[2:]}",
        image=parse(image),
        schedule=Schedule(),
        track=track,
        tag_pattern="v{version}-systemd",
        health_cmd=("pscheduler", "troubleshoot", "--quick"),
        **kw,
    )  # type: ignore[arg-type]


def test_patch_adopts_the_next_patch_release_through_the_gate_and_a_drop_in() -> None:
    w, ov, sink = setup()
    report = core.run_pass((target(),), w.deps)
    (o,) = report.outcomes
    assert o.action == core.UPGRADED, o.message
    assert "v5.2.1-systemd" in o.message
    assert ov.calls == [(UNIT, f"{NAME}:v5.2.1-systemd", BASE)]
    assert w.images.containers["pt0"].image_id == "new0"
    assert w.images.tags[f"{NAME}:v5.2.1-systemd"] == "new0"
    assert w.images.tags[BASE] == "old0"  # the configured tag still names what it was
    assert any(c[0] == "exec" for c in w.images.calls)  # the health gate ran
    cs = w.store.state.get("perfsonar-testpoint")
    assert (cs.release_tag, cs.release_base) == ("v5.2.1-systemd", BASE)
    assert cs.release_how.startswith("drop-in ")
    # v5.3.0 is outside track patch: reported once, never adopted
    available = [e for e in sink.events if e.kind is EventKind.UPDATE_AVAILABLE]
    assert [e.new_digest for e in available] == ["v5.3.0-systemd"]
    assert (
        w.store.state.get("perfsonar-testpoint").behind
        == "newer release v5.3.0-systemd (outside track)"
    )
    assert f"{NAME}:v5.3.0-systemd" not in w.registry.heads
    core.run_pass((target(),), w.deps)
    assert [e.new_digest for e in sink.events if e.kind is EventKind.UPDATE_AVAILABLE] == [
        "v5.3.0-systemd"
    ]
    assert w.store.state.get("perfsonar-testpoint").release_tag == "v5.2.1-systemd"


def test_minor_adopts_the_new_minor_and_major_reports_nothing_outside() -> None:
    w, _ov, _ = setup()
    w.images.remote[f"{NAME}@{NEWER}"] = "newer0"
    (o,) = core.run_pass((target("minor"),), w.deps).outcomes
    assert o.action == core.UPGRADED
    assert "v5.3.0-systemd" in o.message
    assert w.images.containers["pt0"].image_id == "newer0"


def test_a_failing_release_is_rolled_back_the_drop_in_restored_and_never_fetched_again() -> None:
    w, ov, _sink = setup()
    w.units.dies_on.add("new0")
    (o,) = core.run_pass((target(),), w.deps).outcomes
    assert o.action == core.ROLLED_BACK
    assert ov.calls[-1] == (UNIT, None, BASE)  # back on the configured image
    assert w.images.containers["pt0"].image_id == "old0"
    cs = w.store.state.get("perfsonar-testpoint")
    assert cs.rejected_tags == ("v5.2.1-systemd",)
    assert cs.release_tag == ""
    heads = len(w.registry.heads)
    (o,) = core.run_pass((target(),), w.deps).outcomes
    assert o.action == core.UP_TO_DATE
    assert len(w.registry.heads) == heads  # the rejected tag is not HEADed again


def test_rollback_from_a_second_release_restores_the_first() -> None:
    w, ov, _ = setup()
    core.run_pass((target(),), w.deps)
    w.registry.tag_lists[NAME].append("v5.2.2-systemd")
    bad = "sha256:" + "d" * 64
    w.registry.digests[f"{NAME}:v5.2.2-systemd"] = bad
    w.images.remote[f"{NAME}@{bad}"] = "bad0"
    w.units.dies_on.add("bad0")
    (o,) = core.run_pass((target(),), w.deps).outcomes
    assert o.action == core.ROLLED_BACK
    assert ov.calls[-1] == (UNIT, f"{NAME}:v5.2.1-systemd", BASE)
    assert w.images.containers["pt0"].image_id == "new0"
    assert w.store.state.get("perfsonar-testpoint").release_tag == "v5.2.1-systemd"


def test_without_drop_ins_the_configured_tag_is_pointed_at_the_release() -> None:
    w, _ov, _ = setup(works=False)
    (o,) = core.run_pass((target(),), w.deps).outcomes
    assert o.action == core.UPGRADED
    assert w.images.tags[BASE] == "new0"
    assert w.store.state.get("perfsonar-testpoint").release_how == "retag"
    w.units.dies_on.add("new0")


def test_one_listing_per_repository_per_pass_however_many_containers() -> None:
    w, _, _ = setup(n=10)
    names = ["perfsonar-testpoint", *(f"tp{i}" for i in range(1, 10))]
    core.run_pass(tuple(target(name=n) for n in names), w.deps, dry_run=True)
    assert w.registry.listings == [NAME]
    assert w.registry.heads == [f"{NAME}:v5.2.1-systemd"]  # one HEAD per release


def test_known_bad_digest_policy_notify_and_min_age_hold_a_release() -> None:
    w, _, sink = setup()
    w.store.state = manual.block(w.store, "perfsonar-testpoint", NEW, "bad", 0.0)
    (o,) = core.run_pass((target(),), w.deps).outcomes
    assert o.action == core.KNOWN_BAD
    w, _, sink = setup()
    (o,) = core.run_pass((target(policy="notify"),), w.deps).outcomes
    assert o.action == core.AVAILABLE
    assert {e.new_digest for e in sink.events} == {"v5.2.1-systemd", "v5.3.0-systemd"}
    assert w.units.calls == []
    w, _, _ = setup()
    w.registry.created_at[NEW] = w.clock.t - 10
    (o,) = core.run_pass((target(min_age=3600),), w.deps).outcomes
    assert o.action == core.HELD_BACK


def test_pin_holds_and_unpin_releases() -> None:
    w, _, _ = setup()
    manual.pin(w.store, "perfsonar-testpoint", "mesh upgrade on Friday")
    (o,) = core.run_pass((target(),), w.deps).outcomes
    assert (o.action, o.message) == (core.PINNED, "mesh upgrade on Friday")
    assert w.registry.listings == []
    assert manual.unpin(w.store, "perfsonar-testpoint")
    (o,) = core.run_pass((target(),), w.deps).outcomes
    assert o.action == core.UPGRADED


def test_upgrade_to_moves_outside_the_policy_by_hand_and_refuses_another_variant() -> None:
    w, _, _ = setup()
    w.images.remote[f"{NAME}@{NEWER}"] = "newer0"
    t = target()
    report = manual.adopt_release(t, "v5.3.0-systemd", w.deps, (t,))
    assert report.outcomes[0].action == core.UPGRADED
    assert w.store.state.get("perfsonar-testpoint").release_tag == "v5.3.0-systemd"
    with pytest.raises(Exception, match="not a release tag"):
        manual.adopt_release(t, "v5.2.1", w.deps, (t,))


def test_a_release_chosen_by_hand_holds_under_track_digest() -> None:
    w, _, _ = setup()
    t = target()
    manual.adopt_release(t, "v5.2.1-systemd", w.deps, (t,))
    (o,) = core.run_pass((target("digest"),), w.deps).outcomes
    assert o.action == core.PINNED
    assert "v5.2.1-systemd" in o.message


def test_a_changed_configured_image_voids_the_adopted_release() -> None:
    w, _, _ = setup()
    core.run_pass((target(),), w.deps)
    other = f"{NAME}:v5.3.0-systemd"
    w.images.add_image("newer0", NAME, NEWER, "v5.3.0-systemd")
    cs = w.store.state.get("perfsonar-testpoint")
    (o,) = core.run_pass((target(image=other),), w.deps).outcomes
    assert o.action == core.UP_TO_DATE, o.message
    assert w.store.state.get("perfsonar-testpoint").release_tag == ""
    assert cs.release_tag == "v5.2.1-systemd"


def test_tag_listing_failures_count_like_check_failures() -> None:
    w, _, sink = setup()
    w.registry.fail[NAME] = RegistryError("down")
    for _ in range(core.CHECK_FAILING_AFTER):
        (o,) = core.run_pass((target(),), w.deps).outcomes
        assert o.action == core.ERROR
    assert [e.kind for e in sink.events] == [EventKind.CHECK_FAILING]


def test_a_crash_after_the_drop_in_is_recovered_to_a_running_release() -> None:
    w, ov, _ = setup()
    t = target()
    cs = dataclasses.replace(
        w.store.state.get(t.name),
        phase=PHASE_RESTARTING,
        phase_digest=NEW,
        phase_image_id="new0",
        phase_release="v5.2.1-systemd",
        previous_digest=OLD,
        previous_image_id="old0",
    )
    w.store.state = w.store.state.put(cs)
    w.images.add_image("new0", NAME, NEW, "v5.2.1-systemd")
    ov.set_image(UNIT, f"{NAME}:v5.2.1-systemd", BASE, "")
    w.units.state[UNIT] = "failed"
    core.recover_now((t,), w.deps)
    after = w.store.state.get(t.name)
    assert after.phase == ""
    assert after.release_tag == "v5.2.1-systemd"
    assert w.images.containers["pt0"].image_id == "new0"


def test_a_pending_registry_move_is_taken_through_the_gate_and_rolled_back_on_failure() -> None:
    ghcr = "ghcr.io/perfsonar/testpoint:systemd"
    for broken in (False, True):
        w = world((("perfsonar-testpoint", "pt0", ghcr),))
        ov = FakeOverrides(w)
        w.deps.overrides = ov
        # generate's drop-in: the unit still runs the Docker Hub image
        w.images.add_image("hub", NAME, OLD, "systemd")
        ov.set_image(UNIT, f"{NAME}:systemd", ghcr, "registry move pending")
        w.units.restart(UNIT, 1)
        assert w.images.containers["pt0"].image_id == "hub"
        w.images.remote[f"ghcr.io/perfsonar/testpoint@{NEW}"] = "new0"
        if broken:
            w.units.dies_on.add("new0")
        t = Target(
            name="perfsonar-testpoint",
            unit=UNIT,
            container="pt0",
            image=parse(ghcr),
            schedule=Schedule(),
        )
        (o,) = core.run_pass((t,), w.deps).outcomes
        assert ov.current[UNIT] is None  # the pending drop-in is gone
        if broken:
            assert o.action == core.ROLLED_BACK
            assert w.images.containers["pt0"].image_id == "hub"  # under the ghcr.io tag
        else:
            assert o.action == core.UPGRADED
            assert w.images.containers["pt0"].image_id == "new0"


def test_the_watcher_never_follows_a_pattern_of_the_other_variant() -> None:
    # what validation refuses, held by the watcher too: from the systemd variant's moving
    # tag, the supervisord pattern would adopt the newest supervisord release
    w, ov, _ = setup(image=f"{NAME}:systemd")
    w.registry.tag_lists[NAME] = [*TAGS, "v6.0.0"]
    t = dataclasses.replace(target(image=f"{NAME}:systemd"), tag_pattern="v{version}")
    (o,) = core.run_pass((t,), w.deps).outcomes
    assert o.action == core.ERROR
    assert "names supervisord tags" in o.message
    assert ov.calls == []
    assert not any(c[0] == "pull" for c in w.images.calls)
    with pytest.raises(Exception, match="other testpoint variant"):
        manual.adopt_release(t, "v6.0.0", w.deps, (t,))


def test_a_release_of_the_other_variant_is_never_a_candidate() -> None:
    t = target(track="major", image=f"{NAME}:v5.2.0-systemd")
    odd = dataclasses.replace(t, tag_pattern="{version}")  # reads neither variant's tags
    assert track.plan(odd, ContainerState("x"), ["5.3.0", "5.3.0-systemd"]).adopt is None
    decision = track.plan(t, ContainerState("x"), [*TAGS, "v6.0.0"])
    assert decision.adopt is not None
    assert decision.adopt.tag == "v5.3.0-systemd"
