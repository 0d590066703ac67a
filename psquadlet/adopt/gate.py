"""The adopted unit's first start, behind the watcher's own health gate (``watch.health``):
the unit active, its container running, and ``update.health_cmd`` passing (or, without one,
the container still up one interval later), within ``update.health_timeout``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from psquadlet.config import load_config
from psquadlet.deps import require_watch_deps
from psquadlet.watch import health
from psquadlet.watch.app import Endpoints, build_deps
from psquadlet.watch.interfaces import UnitError
from psquadlet.watch.log import Logger
from psquadlet.watch.targets import select, targets_from_config


def health_gate(config_path: Path, name: str, endpoints: Endpoints | None = None) -> str:
    """Start NAME's unit and wait until it is healthy: "" or why it is not."""
    require_watch_deps()
    config = load_config(config_path)
    chosen = select(targets_from_config(config), name)
    if len(chosen) != 1:
        return f"{name} is not a container of {config_path}"
    target = chosen[0]
    deps = build_deps(config, endpoints or Endpoints(), Logger())
    # A unit that fails to start and restarts (Restart=always) keeps its start job queued:
    # the first start gets no more time than the health gate.
    deps = dataclasses.replace(deps, job_timeout=float(target.health_timeout))
    try:
        health.start_unit(target, deps)
    except UnitError as exc:
        return f"{target.unit} did not start: {exc}"
    return health.health_gate(target, "", deps)
