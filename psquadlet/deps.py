"""The watcher's optional dependencies: found, or one clear error naming what to install.

``generate`` and the other commands need only click (and tomli before Python 3.11). The
watcher (``upgrade``, ``watch``) also needs podman-py and pystemd. Without them it would die
with a traceback, and systemd would restart ``psquadlet-watch.service`` every 30 s forever.
``require_watch_deps()`` runs first in those commands: it raises ``MissingDependencyError``,
whose exit code the units list in ``RestartPreventExitStatus=``. It only looks the modules up
(``importlib.util.find_spec``), it does not import them: the daemon imports its adapters in a
short-lived child process to stay small, and the child inherits ``sys.path`` from here.

The Debian package carries podman-py under VENDOR_DIR, because Debian 12 has no
python3-podman. That folder is appended to ``sys.path``, so a podman-py that the system
provides (python3-podman, as on Debian 13, or a venv's) is always found first.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from psquadlet.errors import PsquadletError

# systemd's (and LSB's) exit status for "program is not installed" (EXIT_NOTINSTALLED).
EXIT_MISSING_DEPENDENCY = 5

VENDOR_DIR = Path("/usr/share/psquadlet/vendor")


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
    ("pystemd", "python3-pystemd", "pystemd"),
)


def require_watch_deps(vendor_dir: Path = VENDOR_DIR) -> None:
    """Make the watcher's modules importable, or raise MissingDependencyError for the first."""
    if vendor_dir.is_dir() and str(vendor_dir) not in sys.path:
        sys.path.append(str(vendor_dir))
    for module, package, pip_name in WATCH_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError) as e:  # a broken install: say what broke
            raise MissingDependencyError(module, package, pip_name, str(e)) from e
        if not found:
            raise MissingDependencyError(module, package, pip_name, "not installed")


# The watcher's systemd adapters, most preferred first: (name, the module it needs). The one
# place that says which adapter applies on this host; doctor reports it (``stack`` check). A
# second adapter (systemctl/busctl, no compiled module) is added as a row here.
SYSTEMD_ADAPTERS: tuple[tuple[str, str], ...] = (("pystemd", "pystemd"),)


def systemd_adapter(vendor_dir: Path = VENDOR_DIR) -> str | None:
    """The name of the systemd adapter the watcher would use here, None when none can load.

    Looks the modules up without importing them, like ``require_watch_deps``.
    """
    if vendor_dir.is_dir() and str(vendor_dir) not in sys.path:
        sys.path.append(str(vendor_dir))
    for name, module in SYSTEMD_ADAPTERS:
        try:
            if importlib.util.find_spec(module) is not None:
                return name
        except (ImportError, ValueError):
            continue
    return None
