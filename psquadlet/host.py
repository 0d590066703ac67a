"""Facts about the host psquadlet runs on, in one place.

Every command that needs to know the installed Podman, the machine's architecture or a
unit's state asks this module (doctor, status, generate and the watcher), so that each fact is
parsed one way only.
"""

from __future__ import annotations

import shutil
import subprocess

from psquadlet import quadlet_keys

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "i686": "386",
    "i386": "386",
    "riscv64": "riscv64",
}


def oci_arch(machine: str) -> str:
    """The OCI architecture name (``amd64``, ``arm64``...) for ``uname -m``'s answer."""
    return _ARCH_ALIASES.get(machine.lower(), machine.lower())


def detect_podman_version() -> tuple[int, int, int] | None:
    """The installed podman's version, or None when there is none (or it does not answer)."""
    podman = shutil.which("podman")
    if podman is None:
        return None
    try:
        result = subprocess.run(
            [podman, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        return quadlet_keys.parse_version(result.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
