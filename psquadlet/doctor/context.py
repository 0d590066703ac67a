"""What the doctor's checks look at: the host's probes and the configuration's containers.

Every probe is a field of ``Host`` so that tests can point the checks at a fake cgroup tree or
a PATH of stand-in programs, while the port check still reads the real kernel tables. The
containers are the watcher's ``Target``s (one description of a managed container for every
command); what a target does not carry is read from its ``ContainerSpec``.
"""

from __future__ import annotations

import platform
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from psquadlet import deps
from psquadlet import host as host_facts
from psquadlet.doctor.clock import kernel_clock_synchronized
from psquadlet.doctor.report import Check
from psquadlet.model import Config, ContainerSpec
from psquadlet.watch.targets import Target, targets_from_config


@dataclass(frozen=True)
class Host:
    """Where the checks look. Defaults are the real host."""

    proc_root: Path = Path("/proc")
    cgroup_root: Path = Path("/sys/fs/cgroup")
    path: str | None = None  # PATH used to find podman & co; None: the process's PATH
    machine: str = field(default_factory=platform.machine)
    run: host_facts.Runner = host_facts.run_command
    clock_synchronized: Callable[[], bool | None] = kernel_clock_synchronized
    quadlet_dirs: tuple[Path, ...] = (Path("/etc/containers/systemd"),)
    root: Path = Path("/")  # where host files named by the configuration are looked up
    systemd_adapter: Callable[[], str | None] = deps.systemd_adapter  # the watcher's adapter

    def which(self, program: str) -> str | None:
        return shutil.which(program, path=self.path)

    def run_program(self, program: str, *args: str) -> tuple[int, str]:
        found = self.which(program)
        if found is None:
            return 127, ""
        return self.run([found, *args])


@dataclass(frozen=True)
class Context:
    """One diagnosis: the host, the configuration (or the default one when it did not load)."""

    host: Host
    config: Config
    targets: tuple[Target, ...]
    # Images as written in a configuration that did not load: (where, image).
    raw_images: tuple[tuple[str, str], ...] = ()

    def spec(self, target: Target) -> ContainerSpec:
        return self.config.container(target.name)

    def variant(self, target: Target) -> str | None:
        """The testpoint variant of the container, None when it is not a testpoint."""
        return host_facts.container_variant(self.spec(target))

    def testpoints(self) -> list[Target]:
        return [t for t in self.targets if self.variant(t) is not None]


def context_for(
    config: Config, host: Host | None = None, raw_images: Sequence[tuple[str, str]] = ()
) -> Context:
    return Context(host or Host(), config, targets_from_config(config), tuple(raw_images))


CheckFunction = Callable[[Context], Check]
