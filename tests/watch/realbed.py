"""Helpers for the watcher's tests on real programs: the loopback registry and host podman.

``PodmanRunUnits`` stands in for systemd, which is not PID 1 on this host: a "unit" is a
container run from the image's tag with ``podman run``; a restart removes it and runs it
again, which is what a Quadlet unit's restart does. Restart and rollback through real
systemd are exercised end to end on the booted test bed (tests/e2e).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from watchfakes import ListLog

from psquadlet.imageref import parse
from psquadlet.watch.core import Deps
from psquadlet.watch.interfaces import SystemClock, UnitError
from psquadlet.watch.podman_images import PodmanImages
from psquadlet.watch.registry import HttpRegistry
from psquadlet.watch.schedule import Schedule
from psquadlet.watch.state import FileStateStore
from psquadlet.watch.targets import Target

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if check and res.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {res.stderr.strip()}")
    return res


def container_info(name: str) -> dict[str, object]:
    out = podman("container", "inspect", name).stdout
    return json.loads(out)[0]  # type: ignore[no-any-return]


@dataclass
class PodmanRunUnits:
    units: dict[str, tuple[str, str]] = field(default_factory=dict)  # unit -> (container, ref)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def add(self, unit: str, container: str, ref: str) -> None:
        self.units[unit] = (container, ref)
        self._run(unit)

    def _run(self, unit: str) -> None:
        container, ref = self.units[unit]
        podman("rm", "-f", "-t", "0", container, check=False)
        podman("run", "-d", "--name", container, "--stop-timeout", "1", ref)
        time.sleep(0.2)

    def restart(self, unit: str, timeout: float) -> None:
        self.calls.append(("restart", unit))
        try:
            self._run(unit)
        except RuntimeError as e:
            raise UnitError(str(e)) from e

    def start(self, unit: str, timeout: float) -> None:
        self.calls.append(("start", unit))
        if self.active_state(unit) != "active":
            self._run(unit)

    def reset_failed(self, unit: str) -> None:
        """Nothing to reset: these units are plain ``podman run`` calls."""

    def active_state(self, unit: str) -> str:
        container, _ = self.units[unit]
        res = podman("container", "inspect", "-f", "{{.State.Running}}", container, check=False)
        if res.returncode != 0:
            return "inactive"
        return "active" if res.stdout.strip() == "true" else "failed"

    def cleanup(self) -> None:
        for container, _ in self.units.values():
            podman("rm", "-f", "-t", "0", container, check=False)


def real_deps(
    podman_url: str, state_dir: str, units: PodmanRunUnits, registry: HttpRegistry | None = None
) -> tuple[Deps, ListLog]:
    log = ListLog()
    deps = Deps(
        registry=registry or HttpRegistry(tls_verify=lambda h: False, timeout=5),
        images=PodmanImages(podman_url, tls_verify=lambda h: False),
        units=units,
        clock=SystemClock(),
        store=FileStateStore(state_dir),
        log=log,
        health_interval=0.5,
    )
    return deps, log


def target(name: str, container: str, image: str, **kw: object) -> Target:
    return Target(
        name=name,
        unit=f"{name}.service",
        container=container,
        image=parse(image),
        schedule=Schedule(),
        **kw,
    )  # type: ignore[arg-type]


def remove_images(repo_names: Sequence[str]) -> None:
    """Best-effort removal of every local image of these repositories."""
    res = podman("images", "--format", "{{.Id}} {{.Repository}}", "--digests", check=False)
    ids = {
        line.split()[0]
        for line in res.stdout.splitlines()
        if len(line.split()) > 1 and line.split()[1] in repo_names
    }
    for image_id in ids:
        podman("rmi", image_id, check=False)  # not -f: images shared with stand-in tags stay
