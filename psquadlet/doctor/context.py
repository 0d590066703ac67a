"""What the doctor's checks look at: the host's probes and the configuration's containers.

Every probe is a field of ``Host`` so that tests can point the checks at a fake cgroup tree or
a PATH of stand-in programs, while the port check still reads the real kernel tables. The
containers are the watcher's ``Target``s (one description of a managed container for every
command); what a target does not carry is read from its ``ContainerSpec``.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from psquadlet import deps
from psquadlet import host as host_facts
from psquadlet.doctor.clock import kernel_clock_synchronized
from psquadlet.doctor.report import Check
from psquadlet.errors import PsquadletError
from psquadlet.model import Config, ContainerSpec
from psquadlet.watch.targets import Target, targets_from_config


def resolve_name(name: str, timeout: float = 5.0) -> str:
    """ "" when ``name`` resolves, else why not; bounded by ``timeout`` (a thread that may
    outlive it: getaddrinfo cannot be interrupted)."""
    result: list[str] = []

    def look() -> None:
        try:
            socket.getaddrinfo(name, None)
            result.append("")
        except (OSError, UnicodeError) as exc:
            result.append(str(exc) or type(exc).__name__)

    thread = threading.Thread(target=look, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else f"no answer within {timeout:g}s"


def disk_free(path: str) -> tuple[int, int] | None:
    """(free bytes, total bytes) of the file system holding ``path`` or its nearest existing
    parent; None when none can be read."""
    here = Path(path)
    for folder in (here, *here.parents):
        try:
            usage = shutil.disk_usage(folder)
        except OSError:
            continue
        return usage.free, usage.total
    return None


def _systemd_adapter() -> str | None:
    """``deps.systemd_adapter``, None where it cannot choose (a bad override)."""
    try:
        return deps.systemd_adapter()
    except PsquadletError:
        return None


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
    systemd_adapter: Callable[[], str | None] = _systemd_adapter  # the watcher's adapter
    resolve: Callable[[str], str] = resolve_name
    disk_free: Callable[[str], tuple[int, int] | None] = disk_free
    storage: tuple[str, ...] = ()  # Podman's storage folders; empty: the usual ones

    def which(self, program: str) -> str | None:
        return shutil.which(program, path=self.path)

    def storage_folders(self) -> tuple[str, ...]:
        """Podman's image and container storage for this user (root's or rootless)."""
        if self.storage:
            return self.storage
        if os.geteuid() == 0:
            return ("/var/lib/containers/storage",)
        data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
        return (os.path.join(data, "containers", "storage"),)

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
