"""The lines through which a container's unit calls back into psquadlet: ``Wants=`` of the
upgrade watcher and of the health supervisor's timer (so starting the testpoint, or booting,
starts them) and, with notifications or
metrics configured, the ``ExecStopPost=``/``ExecStartPost=`` hooks that report unhealthy,
restarted and healthy (``psquadlet.notifications.hooks``), both naming the installed
psquadlet."""

from __future__ import annotations

import os
import sys

from psquadlet import unitfile, watchunits
from psquadlet.errors import ConfigError
from psquadlet.model import Config, ContainerSpec


def watcher_wants(config: Config, spec: ContainerSpec) -> tuple[str, ...]:
    """psquadlet's own unit a container's unit wants: starting it (or booting) starts the
    watcher too (``[watch] enabled``, ``mode``; none for ``update.policy = "off"``)."""
    if not config.watch.enabled or spec.update.policy == "off":
        return ()
    return (watchunits.wanted_unit(config.watch.mode),)


def heal_wants(spec: ContainerSpec) -> tuple[str, ...]:
    """The health supervisor's timer, for a container whose check has a restart budget
    (``HealthSpec.supervised``), in either watch mode and whatever ``[watch] enabled`` says:
    without it such a check would have nobody to act on it."""
    return (watchunits.HEAL_TIMER,) if spec.health is not None and spec.health.supervised else ()


def own_wants(config: Config, spec: ContainerSpec) -> tuple[str, ...]:
    """Every unit of psquadlet's own a container's unit wants."""
    return (*watcher_wants(config, spec), *heal_wants(spec))


def health_hooks(config: Config) -> tuple[str, ...]:
    """With notifications or metrics configured: report unhealthy/restarted/healthy from the
    unit's own hooks (psquadlet.notifications.hooks), through the installed psquadlet."""
    if not ((config.notifications and config.notifications.channels) or config.metrics):
        return ()
    base = [sys.executable, "-m", "psquadlet", "notify", "-c", os.path.abspath(config.source)]
    lines = []
    for name, event in (("ExecStopPost", "unhealthy"), ("ExecStartPost", "restarted")):
        try:
            line = unitfile.exec_command([*base, "--hook", "--event", event, "--unit"])
        except unitfile.UnitValueError as exc:
            raise ConfigError(config.source, None, "notifications", exc.reason) from None
        lines.append(f"{name}=-{line} %n")  # "-": a failed report never fails the unit
    return tuple(lines)
