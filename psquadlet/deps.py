"""The watcher's optional dependencies: found, or one clear error naming what to install.

``generate`` and the other commands need only click (and tomli before Python 3.11). The
watcher (``upgrade``, ``watch``) also needs podman-py and requests. Without them it would die
with a traceback, and systemd would restart ``psquadlet-watch.service`` every 30 s forever.
``require_watch_deps()`` runs first in those commands: it raises ``MissingDependencyError``,
whose exit code the units list in ``RestartPreventExitStatus=``. It only looks the modules up
(``importlib.util.find_spec``), it does not import them: the daemon imports its adapters in a
short-lived child process to stay small, and the child inherits ``sys.path`` from here.

systemd is reached through one of two adapters, chosen here only (``systemd_adapter``):
pystemd where it is installed (a C extension: Debian's python3-pystemd, or built by pip), else
``busctl``, which comes with systemd and needs no Python module at all. pystemd is therefore
optional; ``PSQUADLET_SYSTEMD_ADAPTER`` forces one of them.

The Debian package carries podman-py under VENDOR_DIR, because Debian 12 has no
python3-podman. That folder is appended to ``sys.path``, so a podman-py that the system
provides (python3-podman, as on Debian 13, or a venv's) is always found first.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from psquadlet.errors import PsquadletError, UsageError

# systemd's (and LSB's) exit status for "program is not installed" (EXIT_NOTINSTALLED).
EXIT_MISSING_DEPENDENCY = 5

VENDOR_DIR = Path("/usr/share/psquadlet/vendor")

# Where the Units adapters connect: a D-Bus address ("" is the system bus). The user-mode
# watcher unit sets it to the user's bus (psquadlet.watchunits).
DBUS_ADDRESS_ENV = "PSQUADLET_DBUS_ADDRESS"

PYSTEMD = "pystemd"
BUSCTL = "busctl"
SYSTEMD_ADAPTERS = (PYSTEMD, BUSCTL)
SYSTEMD_ADAPTER_ENV = "PSQUADLET_SYSTEMD_ADAPTER"


def default_dbus_address() -> str:
    """ "" means the system bus."""
    return os.environ.get(DBUS_ADDRESS_ENV, "")


class MissingDependencyError(PsquadletError):
    """A Python module the watcher needs cannot be imported (exit code 5, no restart)."""

    exit_code = EXIT_MISSING_DEPENDENCY

    def __init__(self, module: str, package: str, pip_name: str, reason: str) -> None:
        self.module = module
        self.package = package
        self.pip_name = pip_name
        self.reason = reason
        super().__init__(
            f"the watcher needs the Python module {module!r} ({reason}): install the package "
            f"{package}, or run 'pip install {pip_name}' in psquadlet's venv"
        )


# (module, the distribution package that provides it, its PyPI name).
WATCH_MODULES: tuple[tuple[str, str, str], ...] = (
    ("requests", "python3-requests", "requests"),
    # Debian 12 has python3-podman only in bookworm-backports; psquadlet's .deb carries it.
    ("podman", "python3-podman", "podman"),
)
PYSTEMD_MODULE = ("pystemd", "python3-pystemd", "pystemd")


def _add_vendor_dir(vendor_dir: Path) -> None:
    if vendor_dir.is_dir() and str(vendor_dir) not in sys.path:
        sys.path.append(str(vendor_dir))


def _require(module: str, package: str, pip_name: str) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError) as e:  # a broken install: say what broke
        raise MissingDependencyError(module, package, pip_name, str(e)) from e
    if not found:
        raise MissingDependencyError(module, package, pip_name, "not installed")


def systemd_adapter(vendor_dir: Path = VENDOR_DIR) -> str:
    """The watcher's way to systemd on this host: "pystemd" when it is found, else "busctl".

    ``$PSQUADLET_SYSTEMD_ADAPTER`` (pystemd or busctl) overrides; any other value is a
    UsageError. A pystemd that is present but broken still counts as pystemd here, so that
    ``require_watch_deps`` reports it instead of silently falling back.
    """
    forced = os.environ.get(SYSTEMD_ADAPTER_ENV, "")
    if forced:
        if forced not in SYSTEMD_ADAPTERS:
            raise UsageError(
                f"{SYSTEMD_ADAPTER_ENV}={forced!r}: must be one of {', '.join(SYSTEMD_ADAPTERS)}"
            )
        return forced
    _add_vendor_dir(vendor_dir)
    try:
        found = importlib.util.find_spec(PYSTEMD_MODULE[0]) is not None
    except (ImportError, ValueError):
        found = True
    return PYSTEMD if found else BUSCTL


def require_watch_deps(vendor_dir: Path = VENDOR_DIR) -> str:
    """Make the watcher's modules importable, or raise MissingDependencyError for the first.

    Returns the systemd adapter to use (``systemd_adapter``).
    """
    _add_vendor_dir(vendor_dir)
    for module, package, pip_name in WATCH_MODULES:
        _require(module, package, pip_name)
    adapter = systemd_adapter(vendor_dir)
    if adapter == PYSTEMD:
        _require(*PYSTEMD_MODULE)
    return adapter
