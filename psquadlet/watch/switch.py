"""Moving a unit between images: pull first, point the unit, restart, health gate, commit;
or roll back to the previous image and remember the bad one. Each step saves its phase first,
so ``recovery`` can finish or undo it after a crash: ``restarting`` is saved before the unit is
pointed at the new image (tag or drop-in), so no crash leaves it pointed there unrecorded; once
it may be, a save that fails (a full disk) is logged and the switch goes on to the gate and a
commit or rollback (``keep_going``) rather than stopping on an untested image."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from psquadlet.imageref import ImageRef
from psquadlet.watch.events import EventKind
from psquadlet.watch.health import health_gate, restart_unit
from psquadlet.watch.interfaces import (
    ContainerImage,
    ImagesError,
    PullError,
    UnitError,
    WatchError,
)
from psquadlet.watch.outcome import (
    ERROR,
    ROLLED_BACK,
    UPGRADED,
    Deps,
    Outcome,
    emit,
    keep_going,
    save,
    short,
)
from psquadlet.watch.state import (
    PHASE_CHECKING,
    PHASE_PULLING,
    PHASE_RESTARTING,
    PHASE_ROLLING_BACK,
    BadDigest,
    ContainerState,
    HistoryEntry,
    WatchState,
    with_bad,
)
from psquadlet.watch.targets import Target


def upgrade_to(
    t: Target,
    ci: ContainerImage,
    running: str,
    digest: str,
    *,
    deps: Deps,
    state: WatchState,
    release: str = "",
) -> tuple[Outcome, WatchState]:
    """Pull *digest*, restart, gate, roll back on failure; with *release*, the unit then
    runs that release tag (``point_unit``)."""
    log = deps.log
    now = deps.clock.now()
    before = state.get(t.name)
    cs = dataclasses.replace(
        before,
        phase_release=release,
        previous_release=before.release_tag if release else "",
        phase=PHASE_PULLING,
        phase_digest=digest,
        phase_image_id="",
        phase_started=now,
        previous_digest=running,
        previous_image_id=ci.image_id,
    )
    state = save(deps, state, cs)
    pull_ref = f"{t.image.name}@{digest}"
    deps.set_status(f"pulling {pull_ref}")
    log.info(f"{t.name}: pulling {pull_ref}")
    try:
        new_id = deps.images.pull(pull_ref, log.progress)
    except PullError as e:
        cs = dataclasses.replace(cs, phase="", phase_digest="", phase_started=None)
        msg = f"pull of {short(digest)} failed, container left as it is: {e}"
        cs = dataclasses.replace(cs, last_result=f"{ERROR}: {msg}")
        return Outcome(t.name, t.unit, str(t.image), ERROR, msg, running, digest), state.put(cs)
    # Recorded before the unit is pointed at the new image (the tag or drop-in it starts
    # from): a save that fails (a disk the pull filled) stops here with nothing touched, and
    # a crash after it is recovered by gating the new image or rolling back (recovery.py).
    cs = dataclasses.replace(cs, phase=PHASE_RESTARTING, phase_image_id=new_id)
    state = save(deps, state, cs)
    try:
        deps.images.tag(new_id, run_ref(t, release))
    except ImagesError as e:
        cs = dataclasses.replace(cs, phase="", phase_digest="", phase_image_id="")
        msg = f"cannot tag the new image, container left as it is: {e}"
        cs = dataclasses.replace(cs, phase_started=None, last_result=f"{ERROR}: {msg}")
        return Outcome(t.name, t.unit, str(t.image), ERROR, msg, running, digest), state.put(cs)
    try:
        # a release drop-in, or one keeping a Docker Hub install until now (registrymove)
        how = point_unit(t, release, new_id, deps)
    except WatchError as e:
        return rollback(t, cs, f"cannot point {t.unit} at {release or t.image}: {e}", deps, state)
    if release:
        cs = dataclasses.replace(cs, release_how=how)
        state = keep_going(deps, state, cs)
    deps.set_status(f"restarting {t.unit}")
    log.info(f"{t.name}: restarting {t.unit} on {short(digest)}")
    try:
        restart_unit(t, deps)
    except UnitError as e:
        return rollback(t, cs, f"restart failed: {e}", deps, state)
    return gate_and_commit(t, cs, deps, state)


def gate_and_commit(
    t: Target, cs: ContainerState, deps: Deps, state: WatchState, recovered: bool = False
) -> tuple[Outcome, WatchState]:
    cs = dataclasses.replace(cs, phase=PHASE_CHECKING)
    state = keep_going(deps, state, cs)
    deps.set_status(f"health check of {t.unit}")
    failure = health_gate(t, cs.phase_image_id, deps)
    if failure:
        return rollback(t, cs, failure, deps, state)
    return _commit(t, cs, deps, state, recovered)


def _commit(
    t: Target, cs: ContainerState, deps: Deps, state: WatchState, recovered: bool
) -> tuple[Outcome, WatchState]:
    now = deps.clock.now()
    digest, new_id, old_id = cs.phase_digest, cs.phase_image_id, cs.previous_image_id
    kept = tuple(i for i in (old_id, *cs.kept_image_ids) if i and i != new_id)
    keep = kept[: max(t.keep_images, 0)]
    note = " (completed after an interrupted pass)" if recovered else ""
    msg = f"{short(cs.previous_digest)} -> {short(digest)}{note}"
    if cs.phase_release:
        msg = f"release {cs.phase_release} ({short(digest)}){note}"
        cs = dataclasses.replace(
            cs, release_tag=cs.phase_release, release_base=str(t.image), phase_release=""
        )
    cs = dataclasses.replace(
        cs.with_history(
            HistoryEntry(now, UPGRADED, cs.previous_digest, digest, "health gate passed" + note)
        ),
        phase="",
        phase_digest="",
        phase_image_id="",
        phase_started=None,
        running_digest=digest,
        running_image_id=new_id,
        remote_digest=digest,
        available_digest="",
        kept_image_ids=keep,
        last_result=f"{UPGRADED}: {msg}",
    )
    state = keep_going(deps, state, cs)
    emit(deps, t, EventKind.UPGRADED, old=cs.previous_digest, new=digest, detail=msg)
    _prune(t, new_id, keep, deps)
    out = Outcome(
        t.name,
        t.unit,
        str(t.image),
        UPGRADED,
        msg,
        digest,
        digest,
        previous_digest=cs.history[-1].from_digest,
    )
    return out, state


def _prune(t: Target, current: str, keep: Sequence[str], deps: Deps) -> None:
    try:
        candidates = deps.images.untagged_image_ids(t.image)
    except ImagesError as e:
        deps.log.warning(f"{t.name}: not pruning old images: {e}")
        return
    for image_id in candidates:
        if image_id == current or image_id in keep:
            continue
        try:
            if deps.images.remove(image_id):
                deps.log.info(f"{t.name}: removed old image {image_id[:12]}")
        except ImagesError as e:
            deps.log.warning(f"{t.name}: cannot remove old image {image_id[:12]}: {e}")


def rollback(
    t: Target, cs: ContainerState, reason: str, deps: Deps, state: WatchState
) -> tuple[Outcome, WatchState]:
    log = deps.log
    now = deps.clock.now()
    digest = cs.phase_digest
    log.error(
        f"{t.name}: {short(digest)} failed: {reason}; rolling back to {short(cs.previous_digest)}"
    )
    cs = dataclasses.replace(cs, phase=PHASE_ROLLING_BACK)
    state = keep_going(deps, state, cs)
    deps.set_status(f"rolling back {t.unit}")
    problem = _restore_previous(t, cs, deps)
    cs = dataclasses.replace(
        cs.with_history(HistoryEntry(now, ROLLED_BACK, cs.previous_digest, digest, reason)),
        bad_digests=with_bad(cs.bad_digests, BadDigest(digest, now, reason)),
    )
    if cs.phase_release:
        cs = dataclasses.replace(
            cs,
            rejected_tags=tuple(sorted({*cs.rejected_tags, cs.phase_release})),
            phase_release="",
            release_tag=cs.previous_release,
        )
    if problem:
        # Stay in the rolling-back phase: the next start retries the rollback.
        msg = f"{short(digest)} failed ({reason}) and the rollback failed too: {problem}"
        cs = dataclasses.replace(cs, last_result=f"{ERROR}: {msg}")
        state = keep_going(deps, state, cs)
        emit(
            deps,
            t,
            EventKind.ROLLED_BACK,
            old=digest,
            new=cs.previous_digest,
            detail=f"{reason}\nthe rollback failed too: {problem}",
        )
        return Outcome(t.name, t.unit, str(t.image), ERROR, msg, cs.previous_digest, digest), state
    msg = f"{short(digest)} failed ({reason}); back on {short(cs.previous_digest)}"
    cs = dataclasses.replace(
        cs,
        phase="",
        phase_digest="",
        phase_image_id="",
        phase_started=None,
        running_digest=cs.previous_digest,
        running_image_id=cs.previous_image_id,
        last_result=f"{ROLLED_BACK}: {msg}",
    )
    state = keep_going(deps, state, cs)
    emit(deps, t, EventKind.ROLLED_BACK, old=digest, new=cs.previous_digest, detail=reason)
    return Outcome(
        t.name, t.unit, str(t.image), ROLLED_BACK, msg, cs.previous_digest, digest
    ), state


def _restore_previous(t: Target, cs: ContainerState, deps: Deps) -> str:
    """Put the previous image back under the tag and restart; "" on success."""
    back = t.image
    if cs.phase_release or cs.previous_release:
        # the release the unit ran before (or its configured image) becomes the override again
        try:
            if point_unit(t, cs.previous_release, cs.previous_image_id, deps) != "retag":
                back = run_ref(t, cs.previous_release)
        except WatchError as e:
            return f"cannot point {t.unit} back at its previous image: {e}"
    try:
        deps.images.tag(cs.previous_image_id, back)
    except ImagesError as e:
        if not cs.previous_digest:
            return f"previous image {cs.previous_image_id[:12]} cannot be tagged: {e}"
        # pruned behind our back: fetch it again by digest
        try:
            old = deps.images.pull(f"{t.image.name}@{cs.previous_digest}", deps.log.progress)
            deps.images.tag(old, back)
        except WatchError as e2:
            return f"previous image is gone and cannot be pulled again: {e2}"
    try:
        restart_unit(t, deps)
    except UnitError as e:
        return f"restart on the previous image failed: {e}"
    failure = health_gate(
        dataclasses.replace(t, health_cmd=(), health_timeout=min(t.health_timeout, 120)),
        "",
        deps,
    )
    return failure


def run_ref(t: Target, release: str) -> ImageRef:
    """The reference the unit runs: the configured image, or its release tag *release*."""
    return t.image.with_tag(release) if release else t.image


def point_at(t: Target, release: str, image_id: str, deps: Deps) -> str:
    """Tag *image_id* as the reference the unit runs and point the unit at it (again):
    recovery's redo of ``upgrade_to``'s step, idempotent. Returns ``point_unit``'s how."""
    deps.images.tag(image_id, run_ref(t, release))
    return point_unit(t, release, image_id, deps)


def point_unit(t: Target, release: str, image_id: str, deps: Deps) -> str:
    """Make *t*'s unit run *release* ("" = its configured image) once restarted.

    Through ``Deps.overrides`` (a drop-in) where the unit can take one; otherwise the
    configured tag is pointed at the release's image (*image_id*) and "retag" is returned.
    """
    how = ""
    if deps.overrides is not None:
        image = str(run_ref(t, release)) if release else None
        why = f"release {release} adopted (track = {t.track!r})" if release else ""
        how = deps.overrides.set_image(t.unit, image, str(t.image), why)
    if how or not release:
        return how if release else ""  # back on the configured image: tagged by the caller
    deps.images.tag(image_id, t.image)
    return "retag"
