"""Staleness is "behind", not "old": is the followed testpoint tag behind upstream?

Upstream's workflow has no scheduled rebuild, so a current image can be many months old; age
alone is only shown by ``status``. A tag is *behind* when the same tag on upstream's other
registry (ghcr.io <-> docker.io) holds a different image that was built later: one HEAD of
the other registry a day at most (a HEAD costs no Docker Hub pull), and the two images'
creation times only when the digests differ. Release tracking reports newer releases itself
(``track.py``). A ``behind`` event is emitted once per finding; the text stays in the state
for ``status``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from psquadlet.imageref import ImageRef
from psquadlet.presets import TESTPOINT_REPOSITORY, UPSTREAM_REGISTRIES
from psquadlet.watch import core
from psquadlet.watch.events import EventKind
from psquadlet.watch.interfaces import RegistryError
from psquadlet.watch.state import ContainerState
from psquadlet.watch.targets import Target

CHECK_EVERY = 24 * 3600


def other_upstream(ref: ImageRef) -> ImageRef | None:
    """The same testpoint tag on upstream's other registry, None for anything else."""
    if ref.repository != TESTPOINT_REPOSITORY or ref.registry not in UPSTREAM_REGISTRIES:
        return None
    if not ref.tag or ref.digest:
        return None
    (other,) = (r for r in UPSTREAM_REGISTRIES if r != ref.registry)
    return ImageRef(other, ref.repository, ref.tag, None)


def _day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d")


def check(t: Target, cs: ContainerState, digest: str, deps: core.Deps) -> ContainerState:
    """*cs* with ``behind`` brought up to date (at most one HEAD of the other registry a day)."""
    other = other_upstream(t.image)
    now = deps.clock.now()
    if other is None or not digest:
        return cs
    if cs.behind_checked is not None and 0 <= now - cs.behind_checked < CHECK_EVERY:
        return cs
    cs = dataclasses.replace(cs, behind_checked=now)
    try:
        theirs = deps.registry.head(other)
        if theirs.digest == digest:
            return dataclasses.replace(cs, behind="")
        mine_at = deps.registry.created(t.image, digest)
        theirs_at = deps.registry.created(other, theirs.digest)
    except RegistryError as e:
        deps.log.warning(f"{t.name}: cannot compare with {other}: {e}")
        return cs
    if theirs_at <= mine_at:
        return dataclasses.replace(cs, behind="")
    text = (
        f"{other} has a newer image ({core.short(theirs.digest)}, built {_day(theirs_at)}) "
        f"than {t.image} ({core.short(digest)}, built {_day(mine_at)})"
    )
    if text != cs.behind:
        core.emit(deps, t, EventKind.BEHIND, old=digest, new=theirs.digest, detail=text)
    return dataclasses.replace(cs, behind=text)
