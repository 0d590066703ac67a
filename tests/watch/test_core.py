"""The upgrade logic, through fakes of its interfaces (pure and fast)."""

from __future__ import annotations

import dataclasses

import pytest
from watchfakes import IMAGE, NAME, NEW, NEWER, OLD, World, world

from psquadlet.imageref import parse
from psquadlet.watch import core
from psquadlet.watch.events import Event, EventKind
from psquadlet.watch.interfaces import LockedError, PullError, RegistryError, UnitError
from psquadlet.watch.schedule import Schedule
from psquadlet.watch.state import (
    PHASE_CHECKING,
    PHASE_PULLING,
    PHASE_RESTARTING,
    PHASE_ROLLING_BACK,
)
from psquadlet.watch.targets import Target

UNIT = "perfsonar-testpoint.service"


def target(
    name: str = "perfsonar-testpoint", container: str = "pt", image: str = IMAGE, **kw: object
) -> Target:
    return Target(
        name=name,
        unit=f"{name}.service",
        container=container,
        image=parse(image),
        schedule=Schedule(),
        **kw,
    )  # type: ignore[arg-type]


def run(w: World, *targets: Target, dry_run: bool = False) -> core.PassReport:
    return core.run_pass(targets or (target(),), w.deps, dry_run=dry_run)


def test_nothing_new_is_up_to_date_and_touches_nothing() -> None:
    w = world()
    w.registry.digests[IMAGE] = OLD
    report = run(w)
    assert [o.action for o in report.outcomes] == [core.UP_TO_DATE]
    assert w.registry.heads == [IMAGE]
    assert w.images.calls == []
    assert w.units.calls == []
    cs = w.store.state.get("perfsonar-testpoint")
    assert cs.running_digest == OLD
    assert cs.last_check == w.clock.t


def test_one_head_per_distinct_image_however_many_containers() -> None:
    w = world(
        (("a", "ca", IMAGE), ("b", "cb", IMAGE), ("c", "cc", "docker.io/library/busybox:latest"))
    )
    for ref in list(w.registry.digests):
        w.registry.digests[ref] = OLD
    report = run(
        w,
        target("a", "ca"),
        target("b", "cb"),
        target("c", "cc", "docker.io/library/busybox:latest"),
    )
    assert sorted(w.registry.heads) == sorted([IMAGE, "docker.io/library/busybox:latest"])
    assert [o.action for o in report.outcomes] == [core.UP_TO_DATE] * 3


def test_new_image_is_pulled_by_digest_before_restart_then_tagged_and_committed() -> None:
    w = world()
    report = run(w, target(health_cmd=("pscheduler", "troubleshoot", "--quick")))
    (o,) = report.outcomes
    assert o.action == core.UPGRADED, w.log.text()
    assert w.images.calls[0] == ("pull", f"{NAME}@{NEW}")
    assert w.images.calls[1] == ("tag", "new0", IMAGE)
    assert w.units.calls == [("restart", UNIT)]
    assert ("exec", "pt", "pscheduler", "troubleshoot", "--quick") in w.images.calls
    assert w.images.containers["pt"].image_id == "new0"
    cs = w.store.state.get("perfsonar-testpoint")
    assert (cs.running_digest, cs.previous_digest, cs.previous_image_id) == (NEW, OLD, "old0")
    assert cs.phase == ""
    assert cs.history[-1].action == core.UPGRADED
    assert cs.kept_image_ids == ("old0",)
    # the phases were persisted in order before each step
    phases = [s.get("perfsonar-testpoint").phase for s in w.store.saves]
    assert phases.index("pulling") < phases.index("restarting") < phases.index("checking")


def test_pull_failure_leaves_container_untouched_with_a_clear_message() -> None:
    w = world()
    w.images.pull_error = PullError("connection reset while copying blob")
    report = run(w)
    (o,) = report.outcomes
    assert o.action == core.ERROR
    assert "connection reset" in o.message
    assert "left as it is" in o.message
    assert w.units.calls == []
    assert w.images.containers["pt"].image_id == "old0"
    assert w.store.state.get("perfsonar-testpoint").phase == ""
    assert not report.ok


@pytest.mark.parametrize("error", ["connection refused", "timed out", "HTTP 500", "HTTP 401"])
def test_registry_failure_touches_nothing(error: str) -> None:
    w = world()
    w.registry.fail[IMAGE] = RegistryError(f"127.0.0.1:5000: {error}")
    report = run(w)
    (o,) = report.outcomes
    assert o.action == core.ERROR
    assert error in o.message
    assert w.images.calls == []
    assert w.units.calls == []


def test_notify_never_pulls_and_records_once() -> None:
    w = world()
    t = target(policy="notify")
    assert run(w, t).outcomes[0].action == core.AVAILABLE
    assert run(w, t).outcomes[0].action == core.AVAILABLE
    assert w.images.calls == []
    assert w.units.calls == []
    cs = w.store.state.get("perfsonar-testpoint")
    assert cs.available_digest == NEW
    assert [h.action for h in cs.history] == [core.AVAILABLE]


def test_off_and_pinned_send_no_request() -> None:
    w = world(
        (
            ("a", "ca", IMAGE),
            ("b", "cb", "docker.io/perfsonar/testpoint:v5.2.0-systemd"),
            ("c", "cc", f"docker.io/perfsonar/testpoint@{OLD}"),
        )
    )
    report = run(
        w,
        target("a", "ca", policy="off"),
        target("b", "cb", "docker.io/perfsonar/testpoint:v5.2.0-systemd"),
        target("c", "cc", f"docker.io/perfsonar/testpoint@{OLD}"),
    )
    assert [o.action for o in report.outcomes] == [core.OFF, core.PINNED, core.PINNED]
    assert w.registry.heads == []


@pytest.mark.parametrize(
    ("tag", "pinned"),
    [
        ("v5.2.0", True),
        ("v5.2.0-systemd", True),
        ("5.1.4", True),
        ("systemd", False),
        ("latest", False),
        ("5", False),
        ("v5", False),
    ],
)
def test_version_tags_are_pins(tag: str, pinned: bool) -> None:
    assert bool(target(image=f"docker.io/perfsonar/testpoint:{tag}").pinned) is pinned


def test_min_age_holds_back_a_fresh_image_then_adopts_it() -> None:
    w = world()
    w.registry.created_at[NEW] = w.clock.t - 3600
    t = target(min_age=6 * 3600)
    assert run(w, t).outcomes[0].action == core.HELD_BACK
    assert w.images.calls == []
    w.clock.t += 6 * 3600
    assert run(w, t).outcomes[0].action == core.UPGRADED


def test_min_age_fetches_creation_time_only_when_changed() -> None:
    w = world()
    w.registry.digests[IMAGE] = OLD
    run(w, target(min_age=3600))
    assert w.registry.created_calls == []


def test_failed_health_rolls_back_and_remembers_the_bad_digest() -> None:
    w = world()
    w.images.health_exit = [1] * 1000
    t = target(health_cmd=("false",), health_timeout=60)
    (o,) = run(w, t).outcomes
    assert o.action == core.ROLLED_BACK
    assert "health command exited 1" in o.message
    assert w.images.tags[f"{NAME}:systemd"] == "old0"
    assert w.images.containers["pt"].image_id == "old0"
    assert w.units.calls == [("restart", UNIT), ("restart", UNIT)]
    cs = w.store.state.get("perfsonar-testpoint")
    assert cs.is_bad(NEW) is not None
    assert cs.history[-1].action == core.ROLLED_BACK
    assert cs.phase == ""
    # next night: the same bad digest is not tried again
    w.units.calls.clear()
    (o,) = run(w, t).outcomes
    assert o.action == core.KNOWN_BAD
    assert w.units.calls == []
    # a newer image is tried
    w.registry.digests[IMAGE] = NEWER
    w.images.remote[f"{NAME}@{NEWER}"] = "newer"
    w.images.health_exit = []
    assert run(w, t).outcomes[0].action == core.UPGRADED


def test_health_retries_until_the_command_passes() -> None:
    w = world()
    w.images.health_exit = [1, 1, 0]
    (o,) = run(w, target(health_cmd=("check",), health_timeout=60)).outcomes
    assert o.action == core.UPGRADED
    assert w.clock.sleeps == [5.0, 5.0]


def test_container_that_dies_at_once_rolls_back() -> None:
    w = world()
    w.units.dies_on.add("new0")
    (o,) = run(w).outcomes
    assert o.action == core.ROLLED_BACK
    assert "unit failed" in o.message
    assert w.units.state[UNIT] == "active"
    assert w.images.containers["pt"].image_id == "old0"


def test_restart_failure_rolls_back() -> None:
    w = world()
    w.units.restart_error = UnitError("job failed: timeout")
    (o,) = run(w).outcomes
    assert o.action == core.ROLLED_BACK
    assert "job failed" in o.message


def test_rollback_pulls_previous_again_when_it_was_pruned() -> None:
    w = world()
    w.units.dies_on.add("new0")
    original_tag = w.images.tag

    def tag(image_id: str, repo: object) -> None:
        if image_id == "old0" and ("pull", f"{NAME}@{OLD}") not in w.images.calls:
            from psquadlet.watch.interfaces import ImagesError

            raise ImagesError("no such image")
        original_tag(image_id, repo)  # type: ignore[arg-type]

    w.images.tag = tag  # type: ignore[method-assign]
    (o,) = run(w).outcomes
    assert o.action == core.ROLLED_BACK
    assert ("pull", f"{NAME}@{OLD}") in w.images.calls


def test_dry_run_reports_without_pull_restart_or_state() -> None:
    w = world()
    (o,) = run(w, dry_run=True).outcomes
    assert o.action == core.WOULD_UPGRADE
    assert w.images.calls == []
    assert w.units.calls == []
    assert w.store.saves == []


def test_keep_images_prunes_older_untagged_ones() -> None:
    w = world()
    w.images.add_image("ancient", NAME, "sha256:" + "d" * 64)
    (o,) = run(w, target(keep_images=1)).outcomes
    assert o.action == core.UPGRADED
    assert w.images.removed == ["ancient"]
    assert "old0" in w.images.images  # kept for rollback


def test_passes_never_overlap() -> None:
    w = world()
    w.store.locked = True
    with pytest.raises(LockedError):
        run(w)
    assert w.registry.heads == []


def _interrupted(w: World, phase: str) -> None:
    """State as a watcher killed in *phase* leaves it."""
    st = w.store.state
    cs = dataclasses.replace(
        st.get("perfsonar-testpoint"),
        phase=phase,
        phase_digest=NEW,
        phase_image_id="new0",
        previous_digest=OLD,
        previous_image_id="old0",
    )
    w.store.state = st.put(cs)


def test_recovery_after_kill_during_pull_only_ensures_the_unit_runs() -> None:
    w = world()
    w.registry.digests[IMAGE] = OLD
    _interrupted(w, PHASE_PULLING)
    w.units.state[UNIT] = "inactive"
    run(w)
    assert w.units.state[UNIT] == "active"
    assert w.images.containers["pt"].image_id == "old0"
    assert w.store.state.get("perfsonar-testpoint").phase == ""


def test_recovery_after_kill_during_check_finishes_a_healthy_upgrade() -> None:
    w = world()
    w.images.remote[f"{NAME}@{NEW}"] = "new0"
    w.images.pull(f"{NAME}@{NEW}")
    w.images.tag("new0", parse(IMAGE))
    w.units.restart(UNIT, 1)  # the restart happened, then the watcher was killed
    w.units.calls.clear()
    w.images.calls.clear()
    _interrupted(w, PHASE_CHECKING)
    report = run(w)
    cs = w.store.state.get("perfsonar-testpoint")
    assert cs.phase == ""
    assert cs.running_digest == NEW
    assert cs.history[-1].action == core.UPGRADED
    assert report.outcomes[0].action == core.UP_TO_DATE
    assert ("pull", f"{NAME}@{NEW}") not in w.images.calls


def test_recovery_after_kill_before_the_restart_job_restarts_instead_of_gating() -> None:
    """Killed between recording 'restarting' and asking systemd: the old container runs.

    Gating it would wait the whole health_timeout for an image it never started and then
    roll back, holding up the watcher's start for minutes; the restart is done instead.
    """
    w = world()
    w.images.pull(f"{NAME}@{NEW}")
    w.images.tag("new0", parse(IMAGE))  # tagged, then killed before units.restart
    _interrupted(w, PHASE_RESTARTING)
    assert w.images.containers["pt"].image_id == "old0"
    start = w.clock.monotonic()
    core.recover_now([target()], w.deps)
    cs = w.store.state.get("perfsonar-testpoint")
    assert cs.phase == ""
    assert cs.history[-1].action == core.UPGRADED
    assert w.images.containers["pt"].image_id == "new0"
    assert w.units.calls == [("restart", UNIT)]
    assert w.clock.monotonic() - start < target().health_timeout


def test_recovery_after_kill_during_the_restart_job_leaves_it_to_systemd() -> None:
    w = world()
    w.images.pull(f"{NAME}@{NEW}")
    w.images.tag("new0", parse(IMAGE))
    w.units.state[UNIT] = "activating"  # systemd is still running the killed watcher's job
    _interrupted(w, PHASE_RESTARTING)
    core.recover_now([target()], w.deps)
    assert w.units.calls == [("start", UNIT)]  # merges into the job, no second restart
    assert w.images.containers["pt"].image_id == "new0"
    assert w.store.state.get("perfsonar-testpoint").history[-1].action == core.UPGRADED


def test_recovery_of_a_stopped_unit_with_a_bad_new_image_rolls_back() -> None:
    w = world()
    w.images.pull(f"{NAME}@{NEW}")
    w.images.tag("new0", parse(IMAGE))
    w.units.dies_on.add("new0")
    w.units.state[UNIT] = "inactive"  # killed between stop and start
    _interrupted(w, PHASE_CHECKING)
    run(w)
    assert w.units.state[UNIT] == "active"
    assert w.images.containers["pt"].image_id == "old0"
    cs = w.store.state.get("perfsonar-testpoint")
    assert cs.phase == ""
    assert cs.is_bad(NEW)


def test_recovery_redoes_an_interrupted_rollback() -> None:
    w = world()
    w.images.pull(f"{NAME}@{NEW}")
    w.images.tag("new0", parse(IMAGE))
    w.units.dies_on.add("new0")
    w.units.restart(UNIT, 1)
    _interrupted(w, PHASE_ROLLING_BACK)
    run(w)
    assert w.images.containers["pt"].image_id == "old0"
    assert w.units.state[UNIT] == "active"
    assert w.store.state.get("perfsonar-testpoint").phase == ""


def test_missing_container_is_reported_not_upgraded() -> None:
    w = world()
    del w.images.containers["pt"]
    (o,) = run(w).outcomes
    assert o.action == core.NOT_RUNNING
    assert w.images.calls == []


# --------------------------------------------------------------------------- events
class ListSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]


def _sink(w: World) -> ListSink:
    sink = ListSink()
    w.deps.events = sink
    return sink


def test_event_upgraded() -> None:
    w = world()
    sink = _sink(w)
    run(w)
    (e,) = sink.events
    assert (e.kind, e.container, e.unit, e.image) == (
        EventKind.UPGRADED,
        "perfsonar-testpoint",
        UNIT,
        IMAGE,
    )
    assert (e.old_digest, e.new_digest, e.time) == (OLD, NEW, w.clock.t)


def test_event_rolled_back_carries_the_health_output() -> None:
    w = world()
    sink = _sink(w)
    w.images.health_exit = [1] * 1000
    run(w, target(health_cmd=("false",), health_timeout=60))
    (e,) = sink.events
    assert e.kind == EventKind.ROLLED_BACK
    assert (e.old_digest, e.new_digest) == (NEW, OLD)  # from the failed image back to the old
    assert "health command exited 1" in e.detail


def test_event_update_available_once_per_digest_and_none_in_dry_runs() -> None:
    w = world()
    sink = _sink(w)
    t = target(policy="notify")
    run(w, t, dry_run=True)
    assert sink.events == []
    run(w, t)
    run(w, t)
    assert sink.kinds() == [EventKind.UPDATE_AVAILABLE]
    assert sink.events[0].new_digest == NEW
    w.registry.digests[IMAGE] = NEWER
    run(w, t)
    assert sink.kinds() == [EventKind.UPDATE_AVAILABLE] * 2


def test_events_check_failing_after_n_failures_then_recovered() -> None:
    w = world()
    w.registry.digests[IMAGE] = OLD
    sink = _sink(w)
    w.registry.fail[IMAGE] = RegistryError("127.0.0.1:5000: HTTP 503")
    for _ in range(core.CHECK_FAILING_AFTER - 1):
        run(w)
    assert sink.events == []
    assert w.store.state.get("perfsonar-testpoint").check_failures == core.CHECK_FAILING_AFTER - 1
    run(w)
    run(w)  # still failing: said once
    assert sink.kinds() == [EventKind.CHECK_FAILING]
    assert "HTTP 503" in sink.events[0].detail
    del w.registry.fail[IMAGE]
    run(w)
    run(w)
    assert sink.kinds() == [EventKind.CHECK_FAILING, EventKind.CHECK_RECOVERED]
    assert w.store.state.get("perfsonar-testpoint").check_failures == 0


def test_a_single_failed_check_is_not_an_event() -> None:
    w = world()
    w.registry.digests[IMAGE] = OLD
    sink = _sink(w)
    w.registry.fail[IMAGE] = RegistryError("timeout")
    run(w)
    del w.registry.fail[IMAGE]
    run(w)
    assert sink.events == []


def test_event_crash_recovered() -> None:
    w = world()
    w.registry.digests[IMAGE] = OLD
    _interrupted(w, PHASE_PULLING)
    sink = _sink(w)
    core.recover_now([target()], w.deps)
    (e,) = sink.events
    assert e.kind == EventKind.CRASH_RECOVERED
    assert "interrupted while pulling" in e.detail


def test_a_sink_that_raises_does_not_break_the_pass() -> None:
    class Broken:
        def emit(self, event: Event) -> None:
            raise RuntimeError("channel down")

    w = world()
    w.deps.events = Broken()
    assert run(w).outcomes[0].action == core.UPGRADED
    assert "not delivered: channel down" in w.log.text()
