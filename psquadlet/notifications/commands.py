"""What ``psquadlet notify`` runs: a test message now, or an event from outside the watcher.

``--event`` is also run by the container units' own hooks (``--hook``: see ``hooks``), so
that unhealthy/restarted reach the operator in the timer mode too, where no daemon watches.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from psquadlet import model
from psquadlet.errors import UsageError
from psquadlet.metrics import MetricsSettings, MetricsWriter
from psquadlet.notifications import settings as settings_mod
from psquadlet.notifications.deliver import ChannelResult, Log, Notifier
from psquadlet.notifications.message import render
from psquadlet.notifications.outbox import Pending
from psquadlet.notifications.settings import NotificationSettings
from psquadlet.watch.events import Event, EventKind
from psquadlet.watch.state import PHASE_CHECKING, PHASE_RESTARTING, FileStateStore


def settings_of(config: model.Config) -> NotificationSettings:
    """The configuration's ``[notifications]`` settings (no channels when it has none)."""
    return config.notifications or NotificationSettings()


def metrics_of(config: model.Config) -> MetricsSettings | None:
    """The configuration's ``[metrics]`` settings, or None when metrics are off."""
    return config.metrics


def build(
    settings: NotificationSettings, state_dir: str | Path, log: Log | None = None
) -> Notifier:
    """The notifier for a watcher or a hook; reads the URLs file (ConfigError when unsafe)."""
    return Notifier(settings, state_dir, settings_mod.load_urls(settings), log=log)


def container_for(config: model.Config, unit: str) -> model.ContainerSpec:
    """The container run by ``unit`` (its unit name or its table name); UsageError if none."""
    spec = next((s for s in config.containers if unit in (s.unit_name, s.name)), None)
    if spec is None:
        raise UsageError(f"no container runs unit {unit!r} in {config.source}")
    return spec


def _require(settings: NotificationSettings, channel: str | None) -> tuple[str, ...]:
    if not settings.channels:
        raise UsageError("no [notifications.channels.NAME] in the configuration")
    if channel is None:
        return ()
    if settings.channel(channel) is None:
        names = ", ".join(c.name for c in settings.channels)
        raise UsageError(f"no notification channel {channel!r} (configured: {names})")
    return (channel,)


def send_test(config: model.Config, channel: str | None = None) -> list[ChannelResult]:
    """Send a test message now to each channel (or one), bypassing queue and quiet period."""
    settings = settings_of(config)
    only = _require(settings, channel)
    notifier = build(settings, config.watch.state_dir)
    event = Event(
        EventKind.TEST,
        "",
        "",
        "",
        time.time(),
        detail=f"A test of psquadlet's notifications ({config.source}).",
    )
    message = render(event, notifier.host)
    results = []
    for ch in settings.channels:
        if not only or ch.name in only:
            pending = Pending(os.urandom(16).hex(), message.title, message.body, "test", "", 0.0)
            results.append(notifier.send_now(ch, [pending]))
    return results


def running_digest(state_dir: str, name: str) -> str:
    """The digest the container runs: while an upgrade restarts or checks the new image, that
    one (the watcher records it as running only once it passed), else the one recorded as
    running. A health event names only this one."""
    cs = FileStateStore(state_dir).peek()[0].get(name)
    upgrading = cs.phase in (PHASE_RESTARTING, PHASE_CHECKING) and cs.phase_digest
    return cs.phase_digest if upgrading else cs.running_digest


def send_event(
    config: model.Config, kind: EventKind, unit: str, detail: str = ""
) -> list[ChannelResult]:
    """Report ``kind`` for the container run by ``unit`` (``--event``): queue and flush it at
    once on the channels that want it, and fold it into the metrics when they are on."""
    settings = settings_of(config)
    metrics = metrics_of(config)
    if not settings.channels and metrics is None:
        raise UsageError("neither [notifications.channels.NAME] nor [metrics] is configured")
    spec = container_for(config, unit)
    state_dir = config.watch.state_dir
    event = Event(
        kind,
        spec.name,
        spec.unit_name,
        spec.image,
        time.time(),
        new_digest=running_digest(state_dir, spec.name),
        detail=detail,
    )
    if metrics is not None:
        MetricsWriter(state_dir, metrics.textfile_dir).emit(event)
    if not settings.channels:
        return []
    notifier = build(settings, state_dir)
    notifier.emit(event)
    return notifier.flush(force=True)
