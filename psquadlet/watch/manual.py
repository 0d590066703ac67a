"""What an operator asks for by hand: block or unblock a digest, adopt one exact digest or
release (``upgrade --to``), pin or unpin a container.

``block`` records a digest in the container's known-bad list (``BadDigest`` with source
``operator``, a reason and the time): the watcher never moves to it, whatever the registry
says, until ``unblock``. ``adopt`` moves a container to one exact digest through the same
pull, restart, health gate and rollback as a scheduled upgrade; a blocked digest is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import Callable

from psquadlet.errors import UsageError
from psquadlet.watch import core
from psquadlet.watch.digests import describe, is_digest
from psquadlet.watch.interfaces import ImagesError, LockedError, StateStore, WatchError
from psquadlet.watch.releases import TagPattern, same_variant
from psquadlet.watch.state import SOURCE_OPERATOR, BadDigest, WatchState, with_bad
from psquadlet.watch.targets import Target
from psquadlet.watch.track import current_tag


def check_digest(digest: str) -> str:
    if not is_digest(digest):
        raise UsageError(
            f"{describe(digest)} is not a digest (expected sha256:<64 lowercase "
            "hex> or sha512:<128 lowercase hex>)"
        )
    return digest


LOCK_WAIT = 300.0  # seconds block/unblock/pin/unpin wait for a pass to finish (--wait)
LOCK_POLL = 0.5


@contextlib.contextmanager
def waiting_lock(
    store: StateStore,
    wait: float = LOCK_WAIT,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """The state lock, waiting up to *wait* seconds for a pass that holds it to finish.

    A block sent to a whole fleet must not fail on the one host that is mid-pass: the pass
    ends (a health gate takes minutes at most) and the block follows. Past the bound, the
    error says who holds the lock and for how long this waited.
    """
    deadline = monotonic() + max(wait, 0.0)
    with contextlib.ExitStack() as held:
        while True:
            try:
                held.enter_context(store.lock())
                break
            except LockedError as e:
                left = deadline - monotonic()
                if left <= 0:
                    raise LockedError(f"gave up after {wait:g}s (--wait): {e}") from None
                sleep(min(LOCK_POLL, left))
        yield


def block(
    store: StateStore, name: str, digest: str, reason: str, now: float, *, wait: float = LOCK_WAIT
) -> WatchState:
    """Add (or update) an operator block of *digest* for container *name*."""
    check_digest(digest)
    with waiting_lock(store, wait):
        state = store.load()
        cs = state.get(name)
        entry = BadDigest(digest, now, reason or "blocked by the operator", SOURCE_OPERATOR)
        state = state.put(dataclasses.replace(cs, bad_digests=with_bad(cs.bad_digests, entry)))
        store.save(state)
        return state


def unblock(store: StateStore, name: str, digest: str, *, wait: float = LOCK_WAIT) -> bool:
    """Forget *digest* as known-bad for *name* (operator block or rollback); False if absent."""
    check_digest(digest)
    with waiting_lock(store, wait):
        state = store.load()
        cs = state.get(name)
        kept = tuple(b for b in cs.bad_digests if b.digest != digest)
        if len(kept) == len(cs.bad_digests):
            return False
        store.save(state.put(dataclasses.replace(cs, bad_digests=kept)))
        return True


def adopt(
    t: Target, digest: str, deps: core.Deps, known: tuple[Target, ...], dry_run: bool = False
) -> core.PassReport:
    """Move *t* to exactly *digest*: pull, restart, health gate, rollback on failure.

    *dry_run*: the same checks (blocked, running, already there, the registry has it) and
    ``would-upgrade``; no lock, no pull, no restart, the state file untouched.
    """
    check_digest(digest)
    if t.image.digest:
        raise UsageError(f"{t.name}: the configuration pins {t.image}; change it there")
    if dry_run:
        started = deps.clock.now()
        outcome, _ = _adopt(t, digest, deps, deps.store.load(), dry_run=True)
        return core.PassReport((outcome,), started, deps.clock.now(), dry_run=True)
    return _by_hand(deps, known, lambda state: _adopt(t, digest, deps, state))


def _by_hand(
    deps: core.Deps,
    known: tuple[Target, ...],
    step: Callable[[WatchState], tuple[core.Outcome, WatchState]],
) -> core.PassReport:
    """One hand-made step under the lock, after recovering what a crash left in flight."""
    with deps.store.lock():
        state = deps.store.load()
        for note in state.notes:
            deps.log.warning(note)
        state = core.recover(known, deps, state)
        started = deps.clock.now()
        outcome, state = step(state)
        core.report_outcome(deps, outcome)
        deps.store.save(state)
        return core.PassReport((outcome,), started, deps.clock.now())


def _adopt(
    t: Target, digest: str, deps: core.Deps, state: WatchState, dry_run: bool = False
) -> tuple[core.Outcome, WatchState]:
    cs = dataclasses.replace(state.get(t.name), image=str(t.image))

    def done(action: str, message: str, running: str = "") -> tuple[core.Outcome, WatchState]:
        new = dataclasses.replace(cs, last_result=f"{action}: {message}")
        out = core.Outcome(t.name, t.unit, str(t.image), action, message, running, digest)
        return out, state.put(new)

    bad = cs.is_bad(digest)
    if bad is not None:
        return done(
            core.KNOWN_BAD,
            f"{core.short(digest)} is blocked ({bad.reason}); "
            f"psquadlet unblock {t.name} {digest} first",
        )
    try:
        ci = deps.images.container_image(t.container)
    except ImagesError as e:
        return done(core.ERROR, f"cannot inspect container {t.container}: {e}")
    if ci is None:
        return done(
            core.NOT_RUNNING,
            f"container {t.container} does not exist (is {t.unit} running?); start it first",
        )
    running = core.running_digest_for(ci, digest, t.image.name, cs.running_digest)
    if digest in ci.digests:
        return done(core.UP_TO_DATE, f"already running {core.short(digest)}", running)
    if dry_run:
        try:
            deps.registry.head(t.image.with_digest(digest))
        except WatchError as e:
            return done(core.ERROR, f"the registry does not serve {core.short(digest)}: {e}")
        return done(
            core.WOULD_UPGRADE,
            f"would pull {core.short(digest)}, restart {t.unit} (running {core.short(running)})",
            running,
        )
    cs = dataclasses.replace(cs, running_digest=running, running_image_id=ci.image_id)
    state = state.put(cs)
    return core.upgrade_to(t, ci, running, digest, deps=deps, state=state)


def pin(store: StateStore, name: str, reason: str, *, wait: float = LOCK_WAIT) -> WatchState:
    """Hold container *name* where it is: no pass checks or moves it until ``unpin``."""
    with waiting_lock(store, wait):
        state = store.load()
        state = state.put(
            dataclasses.replace(state.get(name), pinned=reason or "pinned by the operator")
        )
        store.save(state)
        return state


def unpin(store: StateStore, name: str, *, wait: float = LOCK_WAIT) -> bool:
    """Let the watcher move *name* again; False when it was not pinned."""
    with waiting_lock(store, wait):
        state = store.load()
        cs = state.get(name)
        if not cs.pinned:
            return False
        store.save(state.put(dataclasses.replace(cs, pinned="")))
        return True


def adopt_release(
    t: Target, tag: str, deps: core.Deps, known: tuple[Target, ...]
) -> core.PassReport:
    """Move *t* to release *tag* by hand (``upgrade --to``), whatever its track allows.

    The tag must be a release of the container's ``tag_pattern`` (so a hand upgrade never
    switches the variant); the same pull, restart, health gate and rollback as a pass.
    """
    if not t.tag_pattern:
        raise UsageError(f"{t.name}: --to needs update.tag_pattern (which tags are releases)")
    pattern = TagPattern(t.tag_pattern)
    if pattern.version(tag) is None:
        raise UsageError(f"{t.name}: {tag!r} is not a release tag of the pattern {t.tag_pattern!r}")
    if not same_variant(t.image, tag):
        raise UsageError(f"{t.name}: {tag!r} is the other testpoint variant than {t.image}")
    return _by_hand(deps, known, lambda state: _adopt_release(t, tag, deps, state))


def _adopt_release(
    t: Target, tag: str, deps: core.Deps, state: WatchState
) -> tuple[core.Outcome, WatchState]:
    cs = dataclasses.replace(state.get(t.name), image=str(t.image))

    def done(action: str, message: str) -> tuple[core.Outcome, WatchState]:
        out = core.Outcome(t.name, t.unit, str(t.image), action, message)
        return out, state.put(dataclasses.replace(cs, last_result=f"{action}: {message}"))

    if current_tag(t, cs) == tag:
        return done(core.UP_TO_DATE, f"already on release {tag}")
    try:
        remote = deps.registry.head(t.image.with_tag(tag))
        ci = deps.images.container_image(t.container)
    except WatchError as e:
        return done(core.ERROR, str(e))
    bad = cs.is_bad(remote.digest)
    if bad is not None:
        return done(
            core.KNOWN_BAD,
            f"{tag} ({core.short(remote.digest)}) is blocked ({bad.reason}); "
            f"psquadlet unblock {t.name} {remote.digest} first",
        )
    if ci is None:
        return done(core.NOT_RUNNING, f"container {t.container} does not exist; start it first")
    running = core.running_digest_for(ci, remote.digest, t.image.name, cs.running_digest)
    cs = dataclasses.replace(
        cs,
        running_digest=running,
        running_image_id=ci.image_id,
        rejected_tags=tuple(x for x in cs.rejected_tags if x != tag),
    )
    return core.upgrade_to(
        t, ci, running, remote.digest, deps=deps, state=state.put(cs), release=tag
    )
