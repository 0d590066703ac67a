"""Fakes of the watcher's interfaces, for the pure-core tests only.

They model the behaviour the core relies on (a tag points at one image id, a container keeps
the image it was created from until its unit restarts) and record every call, so the tests
can assert what was and was not touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from psquadlet.imageref import ImageRef, parse
from psquadlet.watch.core import Deps
from psquadlet.watch.interfaces import (
    ContainerImage,
    ExecResult,
    ImagesError,
    LockedError,
    ProgressFn,
    PullError,
    RegistryError,
    RemoteImage,
    UnitError,
)
from psquadlet.watch.state import WatchState


class FakeRegistry:
    def __init__(self) -> None:
        self.digests: dict[str, str] = {}  # str(ref) -> digest
        self.created_at: dict[str, float] = {}  # digest -> epoch
        self.fail: dict[str, RegistryError] = {}
        self.heads: list[str] = []
        self.created_calls: list[str] = []

    def head(self, repo: ImageRef) -> RemoteImage:
        self.heads.append(str(repo))
        if str(repo) in self.fail:
            raise self.fail[str(repo)]
        return RemoteImage(self.digests[str(repo)], "application/vnd.oci.image.index.v1+json")

    def created(self, repo: ImageRef, digest: str) -> float:
        self.created_calls.append(digest)
        return self.created_at[digest]


@dataclass
class Container:
    image_id: str
    running: bool = True


class FakeImages:
    """Local images by id with their digests; tags map name:tag -> id; containers by name."""

    def __init__(self) -> None:
        self.images: dict[str, set[str]] = {}  # id -> digests
        self.names: dict[str, str] = {}  # id -> repository name
        self.tags: dict[str, str] = {}  # "name:tag" -> id
        self.containers: dict[str, Container] = {}
        self.remote: dict[str, str] = {}  # "name@digest" -> id it pulls as
        self.calls: list[tuple[str, ...]] = []
        self.pull_error: PullError | None = None
        self.health_exit: list[int] = []  # exit codes returned by successive execs
        self.removed: list[str] = []

    def add_image(self, image_id: str, name: str, digest: str, tag: str = "") -> None:
        self.images[image_id] = {digest}
        self.names[image_id] = name
        if tag:
            self.tags[f"{name}:{tag}"] = image_id

    def container_image(self, container: str) -> ContainerImage | None:
        c = self.containers.get(container)
        if c is None:
            return None
        return ContainerImage(container, c.image_id, frozenset(self.images[c.image_id]), c.running)

    def pull(self, reference: str, progress: ProgressFn | None = None) -> str:
        self.calls.append(("pull", reference))
        if self.pull_error is not None:
            raise self.pull_error
        if progress:
            progress(f"Copying blob for {reference}")
        image_id = self.remote[reference]
        name, _, digest = reference.partition("@")
        self.images.setdefault(image_id, set()).add(digest)
        self.names[image_id] = name
        return image_id

    def tag(self, image_id: str, repo: ImageRef) -> None:
        self.calls.append(("tag", image_id, str(repo)))
        if image_id not in self.images:
            raise ImagesError(f"image {image_id} not known")
        self.tags[f"{repo.name}:{repo.tag}"] = image_id

    def untagged_image_ids(self, repo: ImageRef) -> Sequence[str]:
        tagged = set(self.tags.values())
        return [i for i, n in self.names.items() if n == repo.name and i not in tagged]

    def remove(self, image_id: str) -> bool:
        self.calls.append(("remove", image_id))
        if any(c.image_id == image_id for c in self.containers.values()):
            return False
        self.images.pop(image_id, None)
        self.names.pop(image_id, None)
        self.removed.append(image_id)
        return True

    def exec(self, container: str, cmd: Sequence[str], timeout: float) -> ExecResult:
        self.calls.append(("exec", container, *cmd))
        code = self.health_exit.pop(0) if self.health_exit else 0
        return ExecResult(code, "" if code == 0 else "pscheduler: not ready\n")


class FakeUnits:
    """A unit restart re-creates its container from whatever the tag points at."""

    def __init__(self, images: FakeImages) -> None:
        self.images = images
        self.units: dict[str, tuple[str, str]] = {}  # unit -> (container, "name:tag")
        self.state: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.restart_error: UnitError | None = None
        self.dies_on: set[str] = set()  # image ids whose container dies at once
        self.start_limit_hit: set[str] = set()  # units systemd refuses until reset-failed
        self.resets: list[str] = []  # reset-failed calls (kept out of ``calls``)

    def add(self, unit: str, container: str, tagref: str) -> None:
        self.units[unit] = (container, tagref)
        self.state[unit] = "active"
        self.images.containers[container] = Container(self.images.tags[tagref])

    def _start(self, unit: str) -> None:
        container, tagref = self.units[unit]
        image_id = self.images.tags[tagref]
        dies = image_id in self.dies_on
        self.images.containers[container] = Container(image_id, running=not dies)
        self.state[unit] = "failed" if dies else "active"

    def _limited(self, unit: str) -> None:
        if unit in self.start_limit_hit:
            raise UnitError(f"{unit}: start request repeated too quickly")

    def restart(self, unit: str, timeout: float) -> None:
        self.calls.append(("restart", unit))
        self._limited(unit)
        if self.restart_error is not None:
            err, self.restart_error = self.restart_error, None
            raise err
        self._start(unit)

    def start(self, unit: str, timeout: float) -> None:
        self.calls.append(("start", unit))
        self._limited(unit)
        if self.state.get(unit) != "active":
            self._start(unit)

    def reset_failed(self, unit: str) -> None:
        self.resets.append(unit)
        self.start_limit_hit.discard(unit)
        if self.state.get(unit) == "failed":
            self.state[unit] = "inactive"

    def active_state(self, unit: str) -> str:
        return self.state.get(unit, "inactive")


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.t = now
        self.mono = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        self.mono += seconds


class MemoryStore:
    def __init__(self) -> None:
        self.state = WatchState()
        self.saves: list[WatchState] = []
        self.locked = False

    def load(self) -> WatchState:
        return self.state

    def save(self, state: WatchState) -> None:
        self.state = state
        self.saves.append(state)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        if self.locked:
            raise LockedError("locked")
        self.locked = True
        try:
            yield
        finally:
            self.locked = False


@dataclass
class ListLog:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def info(self, msg: str) -> None:
        self.lines.append(("info", msg))

    def warning(self, msg: str) -> None:
        self.lines.append(("warning", msg))

    def error(self, msg: str) -> None:
        self.lines.append(("error", msg))

    def progress(self, msg: str) -> None:
        self.lines.append(("progress", msg))

    def text(self) -> str:
        return "\n".join(f"{lvl}: {m}" for lvl, m in self.lines)


@dataclass
class World:
    registry: FakeRegistry
    images: FakeImages
    units: FakeUnits
    clock: FakeClock
    store: MemoryStore
    log: ListLog
    deps: Deps


IMAGE = "docker.io/perfsonar/testpoint:systemd"
NAME = "docker.io/perfsonar/testpoint"
OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
NEWER = "sha256:" + "c" * 64


def world(units: Sequence[tuple[str, str, str]] = (("perfsonar-testpoint", "pt", IMAGE),)) -> World:
    """A host where each (name, container, image) runs OLD and the registry has NEW."""
    reg, imgs, clock, store, log = (
        FakeRegistry(),
        FakeImages(),
        FakeClock(),
        MemoryStore(),
        ListLog(),
    )
    uts = FakeUnits(imgs)
    for i, (name, container, image) in enumerate(units):
        ref = parse(image)
        old_id = f"old{i}"
        tag = ref.tag or "pinned"
        if f"{ref.name}:{tag}" not in imgs.tags:
            imgs.add_image(old_id, ref.name, OLD, tag)
        uts.add(f"{name}.service", container, f"{ref.name}:{tag}")
        reg.digests[str(ref)] = NEW
        imgs.remote[f"{ref.name}@{NEW}"] = f"new{i}"
        imgs.remote[f"{ref.name}@{OLD}"] = old_id
    deps = Deps(
        registry=reg, images=imgs, units=uts, clock=clock, store=store, log=log, health_interval=5.0
    )
    return World(reg, imgs, uts, clock, store, log, deps)
