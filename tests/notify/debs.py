"""Programs and modules that scripts/test-deps unpacks (never installs) from Debian's .debs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support import unavailable

CACHE = Path(os.environ.get("PSQUADLET_TEST_CACHE", "/var/cache/psquadlet-tests"))
DEBS = CACHE / "notify-debs"


def program(name: str) -> str:
    """promtool / prometheus-node-exporter: unpacked by scripts/test-deps, else from PATH."""
    unpacked = DEBS / "usr/bin" / name
    if unpacked.is_file() and os.access(unpacked, os.X_OK):
        return str(unpacked)
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} not found under {unpacked.parent} or on PATH (run scripts/test-deps)")
    return str(found)


def distribution_apprise() -> Path:
    """The folder holding the distribution's own ``apprise`` package (Debian 12: 1.2.0)."""
    folder = DEBS / "usr/lib/python3/dist-packages"
    if not (folder / "apprise/__init__.py").is_file():
        unavailable(f"Debian's apprise is not unpacked under {folder} (run scripts/test-deps)")
    return folder
