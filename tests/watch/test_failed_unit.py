"""What the watcher does when systemd gave up on a unit (issue 11 item 2), through fakes.

The testpoint preset's start limit stops a unit that keeps failing (Podman's health check
kills it, systemd restarts it, at most ``start_limit_burst`` times per interval). The watcher's
own starts and restarts are deliberate: each is preceded by ``reset-failed`` so the limit
neither refuses them nor is spent by them, and a unit found ``failed`` gets exactly one
``reset-failed`` + start per pass (never a loop).
"""

from __future__ import annotations

from watchfakes import IMAGE, OLD, World, world

from psquadlet.imageref import parse
from psquadlet.watch import core
from psquadlet.watch.interfaces import UnitError
from psquadlet.watch.schedule import Schedule
from psquadlet.watch.targets import Target

UNIT = "perfsonar-testpoint.service"


def target(**kw: object) -> Target:
    return Target(
        name="perfsonar-testpoint",
        unit=UNIT,
        container="pt",
        image=parse(IMAGE),
        schedule=Schedule(),
        **kw,
    )  # type: ignore[arg-type]


def gave_up(w: World) -> None:
    """systemd's state after the start limit: failed, container gone (--rm), starts refused."""
    w.units.state[UNIT] = "failed"
    w.units.start_limit_hit.add(UNIT)
    w.images.containers.pop("pt")


def test_a_failed_unit_gets_one_reset_failed_and_start_then_the_pass_goes_on() -> None:
    w = world()
    w.registry.digests[IMAGE] = OLD  # nothing new: only the revival is asked of the pass
    gave_up(w)
    report = core.run_pass((target(),), w.deps)
    (o,) = report.outcomes
    assert o.action == core.UP_TO_DATE, w.log.text()
    assert o.message.startswith(f"started {UNIT} again after it had failed")
    assert w.units.resets == [UNIT]
    assert w.units.calls == [("start", UNIT)]
    assert w.units.state[UNIT] == "active"
    assert "is failed; reset-failed and one start" in w.log.text()


def test_a_failed_unit_that_does_not_start_is_left_failed_and_tried_once_per_pass() -> None:
    w = world()
    w.registry.digests[IMAGE] = OLD
    gave_up(w)

    def refuse(unit: str, timeout: float) -> None:
        w.units.calls.append(("start", unit))
        w.units.state[unit] = "failed"
        raise UnitError(f"{unit}: StartUnit finished with the unit failed (result: exit-code)")

    w.units.start = refuse  # type: ignore[method-assign]
    for passes in (1, 2):
        (o,) = core.run_pass((target(),), w.deps).outcomes
        assert o.action == core.ERROR
        assert "was failed and did not start again" in o.message
        assert "left failed until the next pass" in o.message
        assert w.units.calls == [("start", UNIT)] * passes  # one start per pass, no loop
    assert w.units.resets == [UNIT, UNIT]
    last = w.store.state.get("perfsonar-testpoint").last_result
    assert last.startswith("error: ")
    assert "did not start again" in last


def test_a_start_job_that_ends_in_systemds_own_restart_is_not_a_start() -> None:
    """systemd 257: a failed start job is followed at once by the automatic restart, so the
    job ends with the unit "activating", not failed: the pass must not count that as up."""
    w = world()
    w.registry.digests[IMAGE] = OLD
    gave_up(w)

    def fails_then_auto_restarts(unit: str, timeout: float) -> None:
        w.units.calls.append(("start", unit))
        w.units.state[unit] = "activating"

    w.units.start = fails_then_auto_restarts  # type: ignore[method-assign]
    (o,) = core.run_pass((target(),), w.deps).outcomes
    assert o.action == core.ERROR
    assert "did not start again: it is activating" in o.message


def test_a_dry_run_does_not_touch_a_failed_unit() -> None:
    w = world()
    w.registry.digests[IMAGE] = OLD
    gave_up(w)
    (o,) = core.run_pass((target(),), w.deps, dry_run=True).outcomes
    assert o.action == core.NOT_RUNNING
    assert w.units.resets == []
    assert w.units.calls == []


def test_the_rollback_restart_is_not_refused_by_the_start_limit() -> None:
    """The new image dies, systemd's restarts of it hit the start limit: the watcher still
    puts the previous image back, because its restart is preceded by reset-failed."""
    w = world()
    w.units.dies_on.add("new0")
    start = w.units._start

    def start_and_give_up(unit: str) -> None:
        start(unit)
        if w.units.state[unit] == "failed":
            w.units.start_limit_hit.add(unit)  # Restart=on-failure spent the burst

    w.units._start = start_and_give_up  # type: ignore[method-assign]
    (o,) = core.run_pass((target(),), w.deps).outcomes
    assert o.action == core.ROLLED_BACK, w.log.text()
    assert w.units.calls == [("restart", UNIT), ("restart", UNIT)]
    assert w.units.resets == [UNIT, UNIT]  # before the upgrade's restart and the rollback's
    assert w.units.state[UNIT] == "active"
    assert w.images.containers["pt"].image_id == "old0"


def test_the_upgrade_restart_does_not_spend_the_crash_loop_budget() -> None:
    """A unit that used up its starts (flaky, but active now) is still upgraded."""
    w = world()
    w.units.start_limit_hit.add(UNIT)
    (o,) = core.run_pass((target(),), w.deps).outcomes
    assert o.action == core.UPGRADED, w.log.text()
    assert w.units.resets == [UNIT]
