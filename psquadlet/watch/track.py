"""One pass for a container that follows releases (``[update] track`` patch | minor | major).

The registry is asked for the repository's tags once per pass however many containers share
it (``list_tags``); the policy (``releases.decide``) picks the release to adopt and the
newest one outside the policy. Only the chosen release's tag is HEADed, and a tag that was
adopted or rolled back before is never fetched again. Adopting runs ``core.upgrade_to`` with
the release: the same pull-first, restart, health gate and rollback, after which the unit
runs the release tag (``core.point_unit``). A release outside the policy is reported once
(``update-available``) and never adopted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from psquadlet.imageref import ImageRef
from psquadlet.watch import core
from psquadlet.watch.events import EventKind
from psquadlet.watch.interfaces import ImagesError, RegistryError, RemoteImage
from psquadlet.watch.releases import (
    Decision,
    Release,
    TagPattern,
    Version,
    conflict,
    decide,
    same_variant,
)
from psquadlet.watch.state import ContainerState, HistoryEntry, WatchState
from psquadlet.watch.targets import Target

DoneFn = Callable[..., "tuple[core.Outcome, WatchState]"]


@dataclass
class Listing:
    """What one pass learnt from the registry: each repository's tags (one listing per
    repository) and the HEAD of each release chosen (one per tag, however many containers)."""

    tags: dict[str, list[str] | RegistryError] = field(default_factory=dict)
    heads: dict[str, RemoteImage | RegistryError] = field(default_factory=dict)

    def head(self, ref: ImageRef, deps: core.Deps) -> RemoteImage:
        key = str(ref)
        if key not in self.heads:
            try:
                self.heads[key] = deps.registry.head(ref)
            except RegistryError as e:
                self.heads[key] = e
        found = self.heads[key]
        if isinstance(found, RegistryError):
            raise found
        return found


def list_tags(targets: Sequence[Target], deps: core.Deps) -> Listing:
    """One tags listing per repository (``ImageRef.name``), in parallel across repositories."""
    repos: dict[str, ImageRef] = {}
    for t in targets:
        repos.setdefault(t.image.name, t.image)
    if not repos:
        return Listing()

    def one(name: str) -> tuple[str, list[str] | RegistryError]:
        try:
            return name, deps.registry.tags(repos[name])
        except RegistryError as e:
            return name, e

    with ThreadPoolExecutor(max_workers=max(1, min(deps.parallel, len(repos)))) as pool:
        return Listing(dict(pool.map(one, sorted(repos))))


def current_tag(t: Target, cs: ContainerState) -> str:
    """The tag the unit runs: an adopted release while it applies to the configured image."""
    if cs.release_tag and cs.release_base == str(t.image):
        return cs.release_tag
    return t.image.tag or ""


def current_version(t: Target, cs: ContainerState) -> Version | None:
    return TagPattern(t.tag_pattern).version(current_tag(t, cs))


def plan(t: Target, cs: ContainerState, tags: Sequence[str]) -> Decision:
    """What the track does; a release of the other testpoint variant is never a candidate
    (config validation refuses such a pattern; this holds whatever the configuration)."""
    pattern = TagPattern(t.tag_pattern)
    releases = [r for r in pattern.releases(tags, t.prerelease) if same_variant(t.image, r.tag)]
    return decide(t.track, current_version(t, cs), releases, skip=cs.rejected_tags)


def handle(
    t: Target,
    listing: Listing,
    deps: core.Deps,
    state: WatchState,
    dry_run: bool,
) -> tuple[core.Outcome, WatchState]:
    now = deps.clock.now()
    cs = dataclasses.replace(state.get(t.name), image=str(t.image), last_check=now)
    if cs.release_base and cs.release_base != str(t.image):
        # the operator configured another image: the adopted release no longer applies
        cs = dataclasses.replace(cs, release_tag="", release_base="", release_how="")
    running_tag = current_tag(t, cs)
    tags = listing.tags[t.image.name]

    def done(
        action: str, message: str, c: ContainerState, running: str = "", remote: str = ""
    ) -> tuple[core.Outcome, WatchState]:
        c = dataclasses.replace(c, last_result=f"{action}: {message}")
        return core.Outcome(t.name, t.unit, str(t.image), action, message, running, remote), (
            state.put(c)
        )

    if isinstance(tags, RegistryError):
        failures = cs.check_failures + 1
        cs = dataclasses.replace(cs, check_failures=failures)
        if failures == core.CHECK_FAILING_AFTER and not dry_run:
            core.emit(deps, t, EventKind.CHECK_FAILING, detail=str(tags))
        return done(core.ERROR, f"cannot list the tags of {t.image.name}: {tags}", cs)
    cs = dataclasses.replace(cs, check_failures=0)
    unsound = conflict(t.tag_pattern, t.image)
    if unsound is not None:  # validation refuses it; never act on such a pattern
        return done(core.ERROR, f"update.tag_pattern: {unsound[0]} ({unsound[1]})", cs)
    decision = plan(t, cs, tags)
    for rel in decision.available:
        cs = _announce(t, cs, rel, running_tag=running_tag, deps=deps, dry_run=dry_run)
    newer = ", ".join(r.tag for r in decision.available)
    cs = dataclasses.replace(cs, behind=f"newer release {newer} (outside track)" if newer else "")
    if decision.adopt is None:
        extra = (
            f"; {', '.join(r.tag for r in decision.available)} available outside track {t.track!r}"
            if decision.available
            else ""
        )
        return done(
            core.UP_TO_DATE, f"on release {running_tag or '?'} (track {t.track!r}){extra}", cs
        )
    return _adopt(
        t, decision.adopt, cs, deps=deps, state=state, dry_run=dry_run, done=done, listing=listing
    )


def _announce(
    t: Target,
    cs: ContainerState,
    rel: Release,
    *,
    running_tag: str,
    deps: core.Deps,
    dry_run: bool,
    why: str = "",
) -> ContainerState:
    """Report a release the watcher does not adopt, once (history, ``update-available``)."""
    if rel.tag in cs.announced_tags:
        return cs
    why = why or f"outside track {t.track!r}: not adopted"
    if not dry_run:
        core.emit(deps, t, EventKind.UPDATE_AVAILABLE, old=running_tag, new=rel.tag, detail=why)
    return dataclasses.replace(
        cs.with_history(HistoryEntry(deps.clock.now(), core.AVAILABLE, running_tag, rel.tag, why)),
        announced_tags=(*cs.announced_tags, rel.tag)[-50:],
    )


def _adopt(
    t: Target,
    rel: Release,
    cs: ContainerState,
    *,
    deps: core.Deps,
    state: WatchState,
    dry_run: bool,
    done: DoneFn,
    listing: Listing,
) -> tuple[core.Outcome, WatchState]:
    ref = t.image.with_tag(rel.tag)
    try:
        remote = listing.head(ref, deps)
    except RegistryError as e:
        return done(core.ERROR, f"cannot check {ref}: {e}", cs)
    bad = cs.is_bad(remote.digest)
    if bad is not None:
        cs = dataclasses.replace(cs, rejected_tags=tuple(sorted({*cs.rejected_tags, rel.tag})))
        return done(
            core.KNOWN_BAD,
            f"{rel.tag} ({core.short(remote.digest)}) is known bad ({bad.reason})",
            cs,
            remote=remote.digest,
        )
    try:
        ci = deps.images.container_image(t.container)
    except ImagesError as e:
        return done(core.ERROR, f"cannot inspect container {t.container}: {e}", cs)
    if ci is None:
        return done(
            core.NOT_RUNNING, f"container {t.container} does not exist (is {t.unit} running?)", cs
        )
    running = core.running_digest_for(ci, remote.digest, t.image.name, cs.running_digest)
    cs = dataclasses.replace(cs, running_digest=running, running_image_id=ci.image_id)
    if t.min_age > 0:
        try:
            age = deps.clock.now() - deps.registry.created(ref, remote.digest)
        except RegistryError as e:
            return done(core.ERROR, f"cannot read {rel.tag}'s age: {e}", cs, running)
        if age < t.min_age:
            return done(
                core.HELD_BACK,
                f"{rel.tag} is {int(age)}s old, min_age is {t.min_age}s",
                cs,
                running,
                remote.digest,
            )
    if t.policy == "notify":
        cs = _announce(
            t,
            cs,
            rel,
            running_tag=current_tag(t, cs),
            deps=deps,
            dry_run=dry_run,
            why="policy notify: not pulled",
        )
        return done(
            core.AVAILABLE,
            f"release {rel.tag} available; policy notify",
            cs,
            running,
            remote.digest,
        )
    if dry_run:
        return done(
            core.WOULD_UPGRADE,
            f"would pull {rel.tag} ({core.short(remote.digest)}), restart {t.unit}",
            cs,
            running,
            remote.digest,
        )
    return core.upgrade_to(
        t, ci, running, remote.digest, deps=deps, state=state.put(cs), release=rel.tag
    )
