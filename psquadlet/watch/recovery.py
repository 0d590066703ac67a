"""Crash recovery: finish or undo an upgrade that a killed watcher left half-done, from the
phase it saved (pulling, restarting, rolling back), before any new pass runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from psquadlet.watch.events import EventKind
from psquadlet.watch.health import restart_unit, start_unit
from psquadlet.watch.interfaces import (
    ImagesError,
    UnitError,
    WatchError,
)
from psquadlet.watch.outcome import Deps, emit, report_outcome, save
from psquadlet.watch.state import (
    PHASE_CHECKING,
    PHASE_PULLING,
    PHASE_RESTARTING,
    ContainerState,
    HistoryEntry,
    WatchState,
)
from psquadlet.watch.switch import gate_and_commit, point_at, rollback
from psquadlet.watch.targets import Target


def recover(targets: Sequence[Target], deps: Deps, state: WatchState) -> WatchState:
    """Finish or undo upgrades a previous watcher left in flight (crash, kill, reboot).

    Whatever happened, the unit must end up running the old or the new image, never stopped.
    """
    by_name = {t.name: t for t in targets}
    for cs in state.containers:
        if not cs.phase:
            continue
        t = by_name.get(cs.name)
        if t is None:
            deps.log.warning(
                f"{cs.name}: upgrade left in phase {cs.phase}, but the container "
                "is no longer configured; forgetting it"
            )
            state = save(deps, state, dataclasses.replace(cs, phase=""))
            continue
        deps.log.warning(f"{t.name}: recovering an upgrade interrupted while {cs.phase}")
        deps.set_status(f"recovering {t.unit}: upgrade interrupted while {cs.phase}")
        try:
            state = _recover_one(t, cs, deps, state)
        except WatchError as e:
            deps.log.error(f"{t.name}: recovery failed: {e}")
            new, what = cs.phase_digest, f"recovery failed: {e}"
        else:
            after = state.get(t.name)
            new = after.running_digest
            what = after.history[-1].reason if after.history else "done"
        detail = f"upgrade interrupted while {cs.phase}; {what}"
        emit(deps, t, EventKind.CRASH_RECOVERED, old=cs.previous_digest, new=new, detail=detail)
    return state


def _recover_one(t: Target, cs: ContainerState, deps: Deps, state: WatchState) -> WatchState:
    now = deps.clock.now()
    if cs.phase == PHASE_PULLING:
        # The unit was not pointed at the new image yet (an older psquadlet tagged it in
        # this phase: tag the previous image again); only make sure it runs that one.
        _back_on_previous(t, cs, deps)
        cs = dataclasses.replace(
            cs.with_history(
                HistoryEntry(
                    now,
                    "recovered",
                    cs.previous_digest,
                    cs.phase_digest,
                    "interrupted pull abandoned",
                )
            ),
            phase="",
            phase_digest="",
            phase_image_id="",
            phase_started=None,
        )
        return save(deps, state, cs)
    if cs.phase == PHASE_RESTARTING and cs.phase_image_id:
        # Saved before the unit is pointed at the new image: point it (again), so that the
        # restart below or the next boot starts the image the gate is about to judge.
        try:
            how = point_at(t, cs.phase_release, cs.phase_image_id, deps)
        except WatchError as e:
            out, state = rollback(t, cs, f"cannot point {t.unit} at it: {e}", deps, state)
            report_outcome(deps, out)
            return state
        if cs.phase_release:
            cs = dataclasses.replace(cs, release_how=how)
    if cs.phase == PHASE_RESTARTING and _still_on_previous(t, cs, deps):
        # Killed after recording the phase but before systemd had the restart job: the old
        # container still runs. Gating it would wait out health_timeout for an image it
        # never started, then roll back (and hold up the watcher's start); restart instead.
        deps.log.info(f"{t.name}: the restart never happened; restarting {t.unit} now")
        deps.set_status(f"restarting {t.unit}")
        try:
            restart_unit(t, deps)
        except UnitError as e:
            out, state = rollback(t, cs, f"restart failed: {e}", deps, state)
            report_outcome(deps, out)
            return state
        out, state = gate_and_commit(t, cs, deps, state, recovered=True)
        report_outcome(deps, out)
        return state
    if cs.phase in (PHASE_RESTARTING, PHASE_CHECKING):
        _ensure_started(t, deps)
        out, state = gate_and_commit(t, cs, deps, state, recovered=True)
        report_outcome(deps, out)
        return state
    # PHASE_ROLLING_BACK (or unknown): redo the rollback
    out, state = rollback(t, cs, "rollback interrupted; redone", deps, state)
    report_outcome(deps, out)
    return state


def _still_on_previous(t: Target, cs: ContainerState, deps: Deps) -> bool:
    """True only on evidence: the unit is active and its container runs the previous image.

    A unit that is activating or deactivating is in the middle of the restart job the killed
    watcher queued; systemd finishes that job on its own.
    """
    if not cs.previous_image_id or cs.previous_image_id == cs.phase_image_id:
        return False
    try:
        if deps.units.active_state(t.unit) != "active":
            return False
        ci = deps.images.container_image(t.container)
    except (UnitError, ImagesError):
        return False
    return ci is not None and ci.running and ci.image_id == cs.previous_image_id


def _ensure_started(t: Target, deps: Deps) -> None:
    start_unit(t, deps)


def _back_on_previous(t: Target, cs: ContainerState, deps: Deps) -> None:
    """An upgrade interrupted before the unit was pointed at the new image: the configured
    tag names the previous image, and the unit runs it (restarted if it runs another)."""
    if not cs.phase_release and cs.previous_image_id:
        try:
            deps.images.tag(cs.previous_image_id, t.image)
        except ImagesError as e:
            deps.log.warning(f"{t.name}: cannot tag the previous image again: {e}")
    _ensure_started(t, deps)
    try:
        ci = deps.images.container_image(t.container)
    except ImagesError:
        return
    if ci is not None and cs.previous_image_id and ci.image_id != cs.previous_image_id:
        deps.log.warning(f"{t.name}: {t.unit} runs an untested image; restarting it")
        restart_unit(t, deps)


def recover_now(targets: Sequence[Target], deps: Deps) -> WatchState:
    """Recovery on its own, under the lock: what the daemon does first when it starts."""
    with deps.store.lock():
        state = deps.store.load()
        for note in state.notes:
            deps.log.warning(note)
        return recover(targets, deps, state)
