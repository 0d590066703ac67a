"""Facts about the host psquadlet runs on, in one place.

Every command that needs to know the installed Podman, the machine's architecture, whether a
container is a perfSONAR testpoint (and which variant) or a unit's state asks this module
(doctor, status, generate and the watcher), so that each fact is found one way only. Programs
are run through a ``Runner`` so that tests can stand in for what this machine cannot do.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Union

from psquadlet import imageref, quadlet_keys
from psquadlet.errors import PsquadletError
from psquadlet.model import ContainerSpec
from psquadlet.presets import PERFSONAR_TESTPOINT

Runner = Callable[[Sequence[str]], "tuple[int, str]"]

# The repository upstream publishes the testpoint under (on docker.io and ghcr.io alike).
TESTPOINT_REPOSITORY = "perfsonar/testpoint"

# Host files psquadlet reads for a report (unit files, limits files, state): far above any
# real one, and a bound on what a symlink to /dev/zero can cost.
MAX_HOST_FILE = 4 * 1024 * 1024

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


def run_command(argv: Sequence[str], timeout: float = 10.0) -> tuple[int, str]:
    """Run a probe program; a missing program reads as exit 127, like a shell would say."""
    try:
        done = subprocess.run(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        return 127, ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 126, str(exc)
    return done.returncode, done.stdout


def oci_arch(machine: str) -> str:
    """The OCI architecture name (``amd64``, ``arm64``...) for ``uname -m``'s answer."""
    return _ARCH_ALIASES.get(machine.lower(), machine.lower())


def podman_version_in(output: str) -> tuple[int, int, int] | None:
    """The version in ``podman --version``'s output (warnings may come first), or None."""
    for line in output.splitlines():
        try:
            return quadlet_keys.parse_version(line)
        except ValueError:
            continue
    return None


def detect_podman_version(run: Runner = run_command) -> tuple[int, int, int] | None:
    """The installed podman's version, or None when there is none (or it does not answer)."""
    podman = shutil.which("podman")
    if podman is None:
        return None
    code, out = run([podman, "--version"])
    return podman_version_in(out) if code == 0 else None


ImageLike = Union[str, imageref.ImageRef]


def testpoint_variant(image: ImageLike) -> str | None:
    """The variant of a perfSONAR testpoint image: ``systemd``, ``supervisord``, or None.

    None for any image that is not ``perfsonar/testpoint`` (on any registry or mirror). The
    tag tells the variant as upstream names them: ``systemd`` and ``vX.Y.Z-systemd`` are the
    systemd variant; ``latest``, ``vX.Y.Z`` and a bare digest are supervisord.
    """
    ref = imageref.normalize(image) if isinstance(image, str) else image
    if ref.repository != TESTPOINT_REPOSITORY:
        return None
    tag = ref.tag or ""
    return "systemd" if "systemd" in tag.split("-") else "supervisord"


def container_variant(spec: ContainerSpec) -> str | None:
    """The testpoint variant a configured container runs, None when it is not a testpoint.

    The preset's ``variant`` wins; otherwise the image's tag tells (``testpoint_variant``).
    """
    from_image = testpoint_variant(spec.image_ref)
    if spec.preset != PERFSONAR_TESTPOINT and from_image is None:
        return None
    return spec.variant or from_image or "supervisord"


def parse_systemctl_show(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def systemctl_show(
    run: Runner, unit: str, properties: Sequence[str], user: bool | None = None
) -> tuple[dict[str, str], str]:
    """``systemctl show -p ...`` of one unit, and a note (not an exception) when it fails.

    ``user`` None: the user's manager for a non-root caller, the system's for root.
    """
    if user is None:
        user = os.geteuid() != 0
    argv = ["systemctl", *(["--user"] if user else []), "show", "-p", ",".join(properties), unit]
    code, out = run(argv)
    values = parse_systemctl_show(out) if code == 0 else {}
    if not values:
        first = out.strip().splitlines()[0][:200] if out.strip() else f"exit {code}"
        return {}, f"systemctl show {unit} failed: {first}"
    return values, ""


class HostFileError(PsquadletError):
    """A host file that cannot be read as text: not a regular file, too big, or not UTF-8."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def read_host_text(path: Path, limit: int = MAX_HOST_FILE) -> str:
    """A small regular file's UTF-8 text, bounded in time and memory.

    Symlinks are followed (units are often linked), but only a regular file is read: a FIFO
    is opened without blocking and refused, a device such as /dev/zero too. Raises
    FileNotFoundError when the file is missing and ``HostFileError`` for anything unusable.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise HostFileError(path, exc.strerror or str(exc)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise HostFileError(path, "not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise HostFileError(path, exc.strerror or str(exc)) from None
    if len(data) > limit:
        raise HostFileError(path, f"larger than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HostFileError(path, f"not UTF-8 text (byte {exc.start})") from None
