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

This module decides (check, compare, policy, release track, min_age); the doing lives in
``switch`` (steps 3-5: pull, point the unit, restart, gate, commit or roll back), crash
recovery in ``recovery``, and what a pass reports and runs on in ``outcome``. ``core``
re-exports their public names: it is the watcher's one entry point.

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

from psquadlet.imageref import ImageRef
from psquadlet.watch.budget import PassRegistry
from psquadlet.watch.events import EventKind
from psquadlet.watch.health import start_if_failed
from psquadlet.watch.interfaces import (
    ContainerImage,
    ImagesError,
    RegistryError,
    RemoteImage,
)
from psquadlet.watch.outcome import (
    AVAILABLE,
    CHANGED_ACTIONS,
    CHECK_FAILING_AFTER,
    ERROR,
    FAILED_ACTIONS,
    HELD_BACK,
    KNOWN_BAD,
    NOT_RUNNING,
    OFF,
    PINNED,
    RESULTS,
    ROLLED_BACK,
    UP_TO_DATE,
    UPGRADED,
    WOULD_UPGRADE,
    Deps,
    Outcome,
    PassReport,
    emit,
    report_outcome,
    save,
    short,
)
from psquadlet.watch.recovery import recover, recover_now
from psquadlet.watch.schedule import not_future
from psquadlet.watch.state import (
    ContainerState,
    HistoryEntry,
    WatchState,
)
from psquadlet.watch.switch import point_unit, upgrade_to
from psquadlet.watch.targets import Target

# The watcher's public API: the pass (here), its outcome types (outcome), the image switch
# (switch) and crash recovery (recovery).
__all__ = [
    "AVAILABLE",
    "CHANGED_ACTIONS",
    "CHECK_FAILING_AFTER",
    "ERROR",
    "FAILED_ACTIONS",
    "HELD_BACK",
    "KNOWN_BAD",
    "NOT_RUNNING",
    "OFF",
    "PINNED",
    "RESULTS",
    "ROLLED_BACK",
    "UPGRADED",
    "UP_TO_DATE",
    "WOULD_UPGRADE",
    "Deps",
    "Outcome",
    "PassReport",
    "check_images",
    "emit",
    "pinned",
    "point_unit",
    "recover",
    "recover_now",
    "report_outcome",
    "run_pass",
    "running_digest_for",
    "save",
    "short",
    "upgrade_to",
]


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


def _pass(
    targets: Sequence[Target], deps: Deps, state: WatchState, dry_run: bool, mark_run: bool = False
) -> PassReport:
    started = deps.clock.now()
    outcomes: list[Outcome] = []
    from psquadlet.watch import track  # noqa: PLC0415 - release tracking builds on this module

    # one budget of registry time for the whole pass: a slow registry cannot stall it
    deps = dataclasses.replace(
        deps, registry=PassRegistry(deps.registry, deps.clock, deps.registry_budget)
    )
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
        # first seen "in the future" (the clock was ahead then): seen now, and so recorded
        cs = dataclasses.replace(cs, seen_since=not_future(cs.seen_since or now, now))
        age = now - (cs.seen_since or now)
        if age < t.min_age:
            cs, _ = _note_available(
                cs, HELD_BACK, running, remote.digest, now=now, why="first seen now"
            )
            return done(
                HELD_BACK,
                f"new image {short(remote.digest)} first seen {int(age)}s ago, "
                f"min_age is {t.min_age}s",
                cs,
                running,
                remote.digest,
            )
    if t.policy == "notify":
        cs, new = _note_available(
            cs, AVAILABLE, running, remote.digest, now=now, why="policy notify"
        )
        if new and not dry_run:
            emit(
                deps,
                t,
                EventKind.UPDATE_AVAILABLE,
                old=running,
                new=remote.digest,
                detail="policy notify: not pulled",
            )
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


def _note_available(
    cs: ContainerState, action: str, running: str, digest: str, *, now: float, why: str
) -> tuple[ContainerState, bool]:
    """Record *digest* as available but not taken; history only the first time (-> True)."""
    new = cs.available_digest != digest
    if new:
        cs = cs.with_history(HistoryEntry(now, action, running, digest, why))
    return dataclasses.replace(cs, available_digest=digest), new
