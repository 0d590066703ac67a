"""What the watcher looks after, taken from the configuration.

The core works on ``Target`` rather than on ``ContainerSpec`` so that it only depends on the
handful of fields an upgrade needs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from psquadlet.imageref import ImageRef
from psquadlet.model import Config
from psquadlet.watch.schedule import Schedule

# A tag that names a release (v5.2.0, 5.2.0, v5.2.0-systemd) is a pin: its content is not
# expected to move, and checking it would only invite an unwanted change. A bare major
# ("5") or a word ("latest", "systemd") floats.
_VERSION_TAG = re.compile(r"^v?[0-9]+(\.[0-9]+)+([-+_.][A-Za-z0-9][A-Za-z0-9._-]*)?$")


@dataclass(frozen=True)
class Target:
    name: str
    unit: str
    container: str
    image: ImageRef
    policy: str = "auto"
    schedule: Schedule = field(default_factory=Schedule)
    min_age: int = 0
    health_cmd: tuple[str, ...] = ()
    health_timeout: int = 300
    keep_images: int = 1
    track: str = "digest"  # digest | patch | minor | major
    tag_pattern: str = ""
    prerelease: bool = False

    @property
    def tracks_releases(self) -> bool:
        return self.track != "digest" and bool(self.tag_pattern)

    @property
    def pinned(self) -> str:
        """Why this image never moves, or "" when it floats."""
        if self.image.digest:
            return f"pinned to digest {self.image.digest}"
        if self.tracks_releases:
            return ""
        if self.image.tag and _VERSION_TAG.match(self.image.tag):
            return f"pinned to version tag {self.image.tag}"
        return ""


def targets_from_config(config: Config) -> tuple[Target, ...]:
    out = []
    for spec in config.containers:
        upd = spec.update
        out.append(
            Target(
                name=spec.name,
                unit=spec.unit_name,
                container=spec.effective_container_name,
                image=spec.image_ref,
                policy=upd.policy,
                schedule=Schedule(
                    daily=None if upd.interval else upd.schedule,
                    randomized_delay=upd.randomized_delay,
                    interval=upd.interval,
                ),
                min_age=upd.min_age,
                health_cmd=tuple(upd.health_cmd),
                health_timeout=upd.health_timeout,
                keep_images=upd.keep_images,
                track=upd.track,
                tag_pattern=upd.tag_pattern,
                prerelease=upd.prerelease,
            )
        )
    return tuple(out)


def select(targets: Sequence[Target], unit: str | None) -> tuple[Target, ...]:
    """Targets matching ``--unit`` (the table name, NAME.service, or the container name)."""
    if not unit:
        return tuple(targets)
    return tuple(t for t in targets if unit in (t.name, t.unit, t.container))
