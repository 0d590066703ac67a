from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support import unavailable

CACHE = Path(os.environ.get("PSQUADLET_TEST_CACHE", "/var/cache/psquadlet-tests"))


def prometheus_program(name: str) -> str:
    """promtool / prometheus-node-exporter: unpacked by scripts/test-deps, else from PATH."""
    unpacked = CACHE / "prometheus/usr/bin" / name
    if unpacked.is_file() and os.access(unpacked, os.X_OK):
        return str(unpacked)
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} not found under {unpacked.parent} or on PATH (run scripts/test-deps)")
    return str(found)
