"""One pass of the watcher: check, decide, pull, restart, health-gate, roll back.

Plain logic over the Protocols in ``interfaces.py``; no podman-py, pystemd or HTTP here, so
every decision can be exercised with fakes and the real adapters stay thin.

Order of an upgrade, and why:
1. one HEAD per distinct image (Docker Hub does not count a HEAD as a pull);
2. compare with the digests of the image the *running container* was created from (not the
   local tag, which may have been re-pulled without a restart);
3. pull by digest *before* the unit is touched, so a failed pull never stops anything;
4. tag, restart through systemd, wait for the job, then the health gate;
5. on failure put the previous image back under the tag, restart, remember the bad digest.
The phase of an upgrade in flight is saved before each step, so ``recover`` can finish or
undo it after a crash.

What an operator may have to act on is also reported as typed events to ``Deps.events`` (an
``EventSink``; ``NullSink`` by default): upgraded, rolled-back (the health output in
``detail``), update-available (policy notify, once per new digest), check-failing (after
``CHECK_FAILING_AFTER`` failed checks in a row, counted in the state) and check-recovered,
crash-recovered. Dry runs emit nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from psquadlet.imageref import ImageRef
from psquadlet.watch.events import Event, EventKind, EventSink, NullSink
from psquadlet.watch.health import health_gate, restart_unit, start_if_failed, start_unit
from psquadlet.watch.interfaces import (
    Clock,
    ContainerImage,
    Images,
    ImagesError,
    Log,
    Overrides,
    PullError,
    Registry,
    RegistryError,
    RemoteImage,
    StateStore,
    UnitError,
    Units,
    WatchError,
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

# Outcome actions
UP_TO_DATE = "up-to-date"
UPGRADED = "upgraded"
WOULD_UPGRADE = "would-upgrade"
AVAILABLE = "available"
HELD_BACK = "held-back"
KNOWN_BAD = "known-bad"
ROLLED_BACK = "rolled-back"
PINNED = "pinned"
OFF = "off"
NOT_RUNNING = "not-running"
ERROR = "error"
FAILED_ACTIONS = (ROLLED_BACK, ERROR)
RESULTS = {
    UP_TO_DATE: "up-to-date",
    UPGRADED: "upgraded",
    WOULD_UPGRADE: "update-available",
    AVAILABLE: "update-available",
    HELD_BACK: "skipped",
    KNOWN_BAD: "blocked",
    ROLLED_BACK: "rolled-back",
    PINNED: "skipped",
    OFF: "skipped",
    NOT_RUNNING: "skipped",
    ERROR: "failed",
}
CHANGED_ACTIONS = (UPGRADED, ROLLED_BACK)

CHECK_FAILING_AFTER = 3  # failed registry checks in a row before a check-failing event


@dataclass(frozen=True)
class Outcome:
    name: str
    unit: str
    image: str
    action: str
    message: str
    running_digest: str = ""
    remote_digest: str = ""
    previous_digest: str = ""  # upgraded: the digest it ran before

    @property
    def result(self) -> str:
        """The outcome as ``upgrade --json`` names it (JSON_CONTRACT: psquadlet-upgrade/1)."""
        return RESULTS.get(self.action, "failed")


@dataclass(frozen=True)
class PassReport:
    outcomes: tuple[Outcome, ...]
    started: float
    finished: float
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not any(o.action in FAILED_ACTIONS for o in self.outcomes)


@dataclass
class Deps:
    """The adapters a pass runs on, plus its tunables."""

    registry: Registry
    images: Images
    units: Units
    clock: Clock
    store: StateStore
    log: Log
    parallel: int = 4
    job_timeout: float = 900.0
    health_interval: float = 5.0
    status: Callable[[str], None] | None = None
    events: EventSink = field(default_factory=NullSink)
    overrides: Overrides | None = None  # release tracking: None = retag the configured tag
    behind_check: bool = False  # compare testpoint tags with upstream's other registry daily

    def set_status(self, text: str) -> None:
        if self.status is not None:
            self.status(text)


def emit(
    deps: Deps, t: Target, kind: EventKind, *, old: str = "", new: str = "", detail: str = ""
) -> None:
    """One event about *t*; a sink that raises never breaks a pass."""
    event = Event(
        kind,
        t.name,
        t.unit,
        str(t.image),
        deps.clock.now(),
        old_digest=old,
        new_digest=new,
        detail=detail,
    )
    try:
        deps.events.emit(event)
    except Exception as e:  # a broken sink is logged, the pass goes on
        deps.log.warning(f"{t.name}: event {kind.value} not delivered: {e}")


def short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"


def running_digest_for(ci: ContainerImage, remote: str, name: str, known: str = "") -> str:
    """The digest to report for a running image.

    An image has several digests (index and per-platform manifest, one per registry it was
    pushed to); prefer the remote one when it matches, then the one recorded last time, then
    one under the target's repository name.
    """
    if remote in ci.digests:
        return remote
    if known and known in ci.digests:
        return known
    mine = sorted(rd.partition("@")[2] for rd in ci.repo_digests if rd.partition("@")[0] == name)
    if mine:
        return mine[0]
    return sorted(ci.digests)[0] if ci.digests else ""


def check_images(targets: Sequence[Target], deps: Deps) -> dict[str, RemoteImage | RegistryError]:
    """One HEAD per distinct image reference, in parallel across images."""
    refs: dict[str, ImageRef] = {}
    for t in targets:
        refs.setdefault(str(t.image), t.image)
    results: dict[str, RemoteImage | RegistryError] = {}
    if not refs:
        return results

    def one(key: str) -> tuple[str, RemoteImage | RegistryError]:
        try:
            return key, deps.registry.head(refs[key])
        except RegistryError as e:
            return key, e

    with ThreadPoolExecutor(max_workers=max(1, min(deps.parallel, len(refs)))) as pool:
        for key, res in pool.map(one, sorted(refs)):
            results[key] = res
    return results


def run_pass(
    targets: Sequence[Target],
    deps: Deps,
    dry_run: bool = False,
    *,
    known: Sequence[Target] | None = None,
    mark_run: bool = False,
) -> PassReport:
    """Check *targets* once and act on what changed. Dry runs take no lock and save nothing.

    *known* is every configured target (default: *targets*): recovery of an interrupted
    upgrade looks at all of them, not only the ones due now. *mark_run* records the pass as
    the scheduled run of these targets (the daemon's missed-run bookkeeping).
    """
    if dry_run:
        return _pass(targets, deps, deps.store.load(), dry_run=True)
    with deps.store.lock():
        state = deps.store.load()
        for note in state.notes:
            deps.log.warning(note)
        state = recover(known if known is not None else targets, deps, state)
        return _pass(targets, deps, state, dry_run=False, mark_run=mark_run)


def recover_now(targets: Sequence[Target], deps: Deps) -> WatchState:
    """Recovery on its own, under the lock: what the daemon does first when it starts."""
    with deps.store.lock():
        state = deps.store.load()
        for note in state.notes:
            deps.log.warning(note)
        return recover(targets, deps, state)


def _pass(
    targets: Sequence[Target], deps: Deps, state: WatchState, dry_run: bool, mark_run: bool = False
) -> PassReport:
    started = deps.clock.now()
    outcomes: list[Outcome] = []
    from psquadlet.watch import track  # noqa: PLC0415 - release tracking builds on this module

    to_check = [t for t in targets if t.policy != "off" and not pinned(t, state)]
    deps.set_status(f"checking {len({str(t.image) for t in to_check})} image(s)")
    remote = check_images([t for t in to_check if not t.tracks_releases], deps)
    tags = track.list_tags([t for t in to_check if t.tracks_releases], deps)
    for t in targets:
        if t.policy == "off":
            outcomes.append(Outcome(t.name, t.unit, str(t.image), OFF, "policy is off"))
            continue
        if pinned(t, state):
            outcomes.append(Outcome(t.name, t.unit, str(t.image), PINNED, pinned(t, state)))
            continue
        if t.tracks_releases:
            outcome, state = track.handle(t, tags, deps, state, dry_run)
        else:
            outcome, state = _handle(t, remote[str(t.image)], deps, state, dry_run)
        report_outcome(deps, outcome)
        outcomes.append(outcome)
        if mark_run:
            state = state.put(dataclasses.replace(state.get(t.name), last_run=started))
        if not dry_run:
            deps.store.save(state)
    return PassReport(tuple(outcomes), started, deps.clock.now(), dry_run)


def pinned(t: Target, state: WatchState) -> str:
    """Why *t* stays where it is (the configuration, ``psquadlet pin``, or a release chosen by
    hand that ``track = "digest"`` does not follow), or ""."""
    cs = state.get(t.name)
    if not t.tracks_releases and cs.release_tag and cs.release_base == str(t.image):
        return f"on release {cs.release_tag} (upgrade --to); track {t.track!r} follows no releases"
    return t.pinned or cs.pinned


def report_outcome(deps: Deps, o: Outcome) -> None:
    line = f"{o.name}: {o.action}: {o.message}"
    if o.action in FAILED_ACTIONS:
        deps.log.error(line)
    elif o.action in (UPGRADED, AVAILABLE, WOULD_UPGRADE, HELD_BACK, KNOWN_BAD, NOT_RUNNING):
        deps.log.warning(line) if o.action == NOT_RUNNING else deps.log.info(line)
    else:
        deps.log.info(line)


def _handle(
    t: Target,
    remote: RemoteImage | RegistryError,
    deps: Deps,
    state: WatchState,
    dry_run: bool,
) -> tuple[Outcome, WatchState]:
    now = deps.clock.now()
    cs = dataclasses.replace(state.get(t.name), image=str(t.image), last_check=now)

    # A unit systemd gave up on (start limit) gets one reset-failed + start per pass.
    revived = None if dry_run else start_if_failed(t, deps)

    def done(
        action: str, message: str, cs: ContainerState, running: str = "", remote_digest: str = ""
    ) -> tuple[Outcome, WatchState]:
        if revived == "":
            message = f"started {t.unit} again after it had failed; {message}"
        cs = dataclasses.replace(cs, last_result=f"{action}: {message}")
        out = Outcome(t.name, t.unit, str(t.image), action, message, running, remote_digest)
        return out, state.put(cs)

    if revived:
        return done(ERROR, f"{revived}; left failed until the next pass", cs)
    if isinstance(remote, RegistryError):
        cs = dataclasses.replace(cs, check_failures=cs.check_failures + 1)
        if cs.check_failures == CHECK_FAILING_AFTER and not dry_run:
            emit(
                deps,
                t,
                EventKind.CHECK_FAILING,
                detail=f"{cs.check_failures} checks in a row failed; last: {remote}",
            )
        return done(ERROR, f"registry check failed, container left as it is: {remote}", cs)
    if cs.check_failures >= CHECK_FAILING_AFTER and not dry_run:
        emit(
            deps,
            t,
            EventKind.CHECK_RECOVERED,
            new=remote.digest,
            detail=f"the registry check works again after {cs.check_failures} failures",
        )
    cs = dataclasses.replace(cs, remote_digest=remote.digest, check_failures=0)
    if deps.behind_check and not dry_run:
        from psquadlet.watch import behind  # noqa: PLC0415 - builds on this module

        cs = behind.check(t, cs, remote.digest, deps)
    try:
        ci = deps.images.container_image(t.container)
    except ImagesError as e:
        return done(
            ERROR, f"cannot inspect container {t.container}: {e}", cs, remote_digest=remote.digest
        )
    if ci is None:
        return done(
            NOT_RUNNING,
            f"container {t.container} does not exist (is {t.unit} running?); nothing to compare",
            cs,
            remote_digest=remote.digest,
        )
    running = running_digest_for(ci, remote.digest, t.image.name, cs.running_digest)
    cs = dataclasses.replace(cs, running_digest=running, running_image_id=ci.image_id)
    if remote.digest in ci.digests:
        cs = dataclasses.replace(cs, available_digest="")
        return done(UP_TO_DATE, f"running {short(remote.digest)}", cs, running, remote.digest)
    bad = cs.is_bad(remote.digest)
    if bad is not None:
        return done(
            KNOWN_BAD,
            f"{short(remote.digest)} was rolled back before "
            f"({bad.reason}); waiting for a newer image",
            cs,
            running,
            remote.digest,
        )
    if t.min_age > 0:
        # A soak: measured from when this watcher first saw the digest (kept in the state),
        # not the image's build date, which a re-tag or a reproducible build would defeat.
        if cs.seen_digest != remote.digest or cs.seen_since is None:
            cs = dataclasses.replace(cs, seen_digest=remote.digest, seen_since=now)
        age = now - (cs.seen_since or now)
        if age < t.min_age:
            if cs.available_digest != remote.digest:
                cs = cs.with_history(
                    HistoryEntry(now, HELD_BACK, running, remote.digest, "first seen now")
                )
            cs = dataclasses.replace(cs, available_digest=remote.digest)
            return done(
                HELD_BACK,
                f"new image {short(remote.digest)} first seen {int(age)}s ago, "
                f"min_age is {t.min_age}s",
                cs,
                running,
                remote.digest,
            )
    if t.policy == "notify":
        if cs.available_digest != remote.digest:
            cs = cs.with_history(
                HistoryEntry(now, AVAILABLE, running, remote.digest, "policy notify")
            )
            if not dry_run:
                emit(
                    deps,
                    t,
                    EventKind.UPDATE_AVAILABLE,
                    old=running,
                    new=remote.digest,
                    detail="policy notify: not pulled",
                )
        cs = dataclasses.replace(cs, available_digest=remote.digest)
        return done(
            AVAILABLE,
            f"new image {short(remote.digest)} available (running "
            f"{short(running)}); policy notify: not pulled",
            cs,
            running,
            remote.digest,
        )
    if dry_run:
        return done(
            WOULD_UPGRADE,
            f"would pull {short(remote.digest)}, restart {t.unit} (running {short(running)})",
            cs,
            running,
            remote.digest,
        )
    state = state.put(cs)
    return upgrade_to(t, ci, running, remote.digest, deps=deps, state=state)


def _save(deps: Deps, state: WatchState, cs: ContainerState) -> WatchState:
    state = state.put(cs)
    deps.store.save(state)
    return state


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
    state = _save(deps, state, cs)
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
    try:
        deps.images.tag(new_id, run_ref(t, release))
    except ImagesError as e:
        cs = dataclasses.replace(cs, phase="", phase_digest="", phase_started=None)
        msg = f"cannot tag the new image, container left as it is: {e}"
        cs = dataclasses.replace(cs, last_result=f"{ERROR}: {msg}")
        return Outcome(t.name, t.unit, str(t.image), ERROR, msg, running, digest), state.put(cs)
    cs = dataclasses.replace(cs, phase=PHASE_RESTARTING, phase_image_id=new_id)
    state = _save(deps, state, cs)
    try:
        # a release drop-in, or one keeping a Docker Hub install until now (registrymove)
        how = point_unit(t, release, new_id, deps)
    except WatchError as e:
        return _rollback(t, cs, f"cannot point {t.unit} at {release or t.image}: {e}", deps, state)
    if release:
        cs = dataclasses.replace(cs, release_how=how)
        state = _save(deps, state, cs)
    deps.set_status(f"restarting {t.unit}")
    log.info(f"{t.name}: restarting {t.unit} on {short(digest)}")
    try:
        restart_unit(t, deps)
    except UnitError as e:
        return _rollback(t, cs, f"restart failed: {e}", deps, state)
    return _gate_and_commit(t, cs, deps, state)


def _gate_and_commit(
    t: Target, cs: ContainerState, deps: Deps, state: WatchState, recovered: bool = False
) -> tuple[Outcome, WatchState]:
    cs = dataclasses.replace(cs, phase=PHASE_CHECKING)
    state = _save(deps, state, cs)
    deps.set_status(f"health check of {t.unit}")
    failure = health_gate(t, cs.phase_image_id, deps)
    if failure:
        return _rollback(t, cs, failure, deps, state)
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
    state = _save(deps, state, cs)
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


def _rollback(
    t: Target, cs: ContainerState, reason: str, deps: Deps, state: WatchState
) -> tuple[Outcome, WatchState]:
    log = deps.log
    now = deps.clock.now()
    digest = cs.phase_digest
    log.error(
        f"{t.name}: {short(digest)} failed: {reason}; rolling back to {short(cs.previous_digest)}"
    )
    cs = dataclasses.replace(cs, phase=PHASE_ROLLING_BACK)
    state = _save(deps, state, cs)
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
        state = _save(deps, state, cs)
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
    state = _save(deps, state, cs)
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
            state = _save(deps, state, dataclasses.replace(cs, phase=""))
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
        # The running unit was never touched; only make sure it runs.
        _ensure_started(t, deps)
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
        return _save(deps, state, cs)
    if cs.phase == PHASE_RESTARTING and _still_on_previous(t, cs, deps):
        # Killed after recording the phase but before systemd had the restart job: the old
        # container still runs. Gating it would wait out health_timeout for an image it
        # never started, then roll back (and hold up the watcher's start); restart instead.
        deps.log.info(f"{t.name}: the restart never happened; restarting {t.unit} now")
        deps.set_status(f"restarting {t.unit}")
        try:
            restart_unit(t, deps)
        except UnitError as e:
            out, state = _rollback(t, cs, f"restart failed: {e}", deps, state)
            report_outcome(deps, out)
            return state
        out, state = _gate_and_commit(t, cs, deps, state, recovered=True)
        report_outcome(deps, out)
        return state
    if cs.phase in (PHASE_RESTARTING, PHASE_CHECKING):
        _ensure_started(t, deps)
        out, state = _gate_and_commit(t, cs, deps, state, recovered=True)
        report_outcome(deps, out)
        return state
    # PHASE_ROLLING_BACK (or unknown): redo the rollback
    out, state = _rollback(t, cs, "rollback interrupted; redone", deps, state)
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
