"""The small interfaces the upgrade logic is written against.

The core (``psquadlet.watch.core``) never talks to a registry, Podman or systemd itself; it
calls these Protocols so that it can be tested with fakes and so that ``import
psquadlet.watch.core`` stays free of podman-py and pystemd. The real adapters live in
``registry.py``, ``podman_images.py`` and ``systemd_units.py`` (pystemd) or ``busctl_units.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from psquadlet.errors import PsquadletError
from psquadlet.imageref import ImageRef

if TYPE_CHECKING:
    from psquadlet.watch.state import WatchState


class WatchError(PsquadletError):
    """Base for failures of one check or upgrade step; the message is shown to the operator."""

    exit_code = 1


class RegistryError(WatchError):
    """The registry could not tell us the current digest (down, timeout, 5xx, 401, ...)."""


class PullError(WatchError):
    """Pulling the new image failed or was interrupted; the running container is untouched."""


class ImagesError(WatchError):
    """A Podman operation other than pull failed (inspect, tag, exec, remove)."""


class UnitError(WatchError):
    """systemd refused or failed a job on the unit."""


class LockedError(WatchError):
    """Another pass holds the state lock."""


@dataclass(frozen=True)
class RemoteImage:
    """What one HEAD of a manifest told us."""

    digest: str
    media_type: str


@dataclass(frozen=True)
class ContainerImage:
    """The image a container was created from, as Podman reports it.

    ``digests`` holds every manifest digest Podman knows for the image (its ``Digest`` and
    the digest part of each ``RepoDigests`` entry): for an image pulled through a multi-arch
    index this includes both the index digest and the per-platform manifest digest, which is
    what makes a HEAD of the tag comparable without an upgrade loop.
    """

    container: str
    image_id: str
    digests: frozenset[str]
    running: bool
    repo_digests: frozenset[str] = frozenset()  # "name@digest", to name the running digest


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


ProgressFn = Callable[[str], None]


class Registry(Protocol):
    def head(self, repo: ImageRef) -> RemoteImage:
        """One HEAD of the tag's manifest. Raises RegistryError."""
        ...

    def tags(self, repo: ImageRef) -> list[str]:
        """Every tag of the repository (all pages). Raises RegistryError."""
        ...

    def created(self, repo: ImageRef, digest: str) -> float:
        """Creation time (epoch seconds) of the image behind *digest*, from its config blob.

        Only called once a change was detected and a minimum age is configured, because it
        costs GETs of manifests, which registries like Docker Hub count as pulls.
        """
        ...


class Images(Protocol):
    def container_image(self, container: str) -> ContainerImage | None:
        """The image of the named container, None when there is no such container."""
        ...

    def pull(self, reference: str, progress: ProgressFn | None = None) -> str:
        """Pull *reference*; return the image id. Raises PullError."""
        ...

    def tag(self, image_id: str, repo: ImageRef) -> None:
        """Point repo.name:repo.tag at *image_id*."""
        ...

    def untagged_image_ids(self, repo: ImageRef) -> Sequence[str]:
        """Ids of local images of the repository that no tag points to (pruning candidates).

        Only untagged ones: an image an operator tagged on purpose is never pruned.
        """
        ...

    def remove(self, image_id: str) -> bool:
        """Remove an image that no container uses; False when it is in use or gone."""
        ...

    def exec(self, container: str, cmd: Sequence[str], timeout: float) -> ExecResult:
        """Run *cmd* inside the running container."""
        ...


class Units(Protocol):
    def restart(self, unit: str, timeout: float) -> None:
        """Restart the unit and wait for systemd's job to finish. Raises UnitError."""
        ...

    def start(self, unit: str, timeout: float) -> None:
        """Start the unit (no-op when active) and wait for the job."""
        ...

    def active_state(self, unit: str) -> str:
        """systemd's ActiveState: active, activating, failed, inactive, ..."""
        ...

    def reset_failed(self, unit: str) -> None:
        """``systemctl reset-failed``: leave the failed state, forget the start limit's count."""
        ...


class UnitsAdapter(Units, Protocol):
    """What the real adapters (pystemd, busctl) offer beyond ``Units``: for the drop-in
    writer (``unit_overrides``) and the tests."""

    def main_pid(self, unit: str) -> int: ...

    def source_path(self, unit: str) -> str:
        """The file a generated unit came from (a Quadlet ``.container``), else its fragment."""
        ...

    def daemon_reload(self) -> None:
        """``systemctl daemon-reload``; returns once systemd has reloaded."""
        ...


class Overrides(Protocol):
    """How a unit is made to run another image than its configured one (release tracking)."""

    def set_image(self, unit: str, image: str | None, base: str, why: str) -> str:
        """Make *unit* run *image* (None: back to its configured *base*) and reload systemd.

        Returns how (e.g. "drop-in PATH"), or "" when this unit cannot take an override
        (a Quadlet older than Podman 5.0, a plain .service): the caller then points the
        configured tag at the release image instead. Raises UnitError.
        """
        ...


class Clock(Protocol):
    def now(self) -> float:
        """Wall clock, epoch seconds (schedules, ages, history)."""
        ...

    def monotonic(self) -> float:
        """For timeouts."""
        ...

    def sleep(self, seconds: float) -> None: ...


class StateStore(Protocol):
    def load(self) -> WatchState: ...

    def save(self, state: WatchState) -> None: ...

    def lock(self) -> AbstractContextManager[None]:
        """Exclusive lock held for a whole pass; raises LockedError when taken."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class Log(Protocol):
    """Operator-facing messages; log.py renders them for journald or a terminal."""

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...

    def error(self, msg: str) -> None: ...

    def progress(self, msg: str) -> None:
        """A transient progress line (a pull): overwritten on a terminal, logged otherwise."""
        ...
