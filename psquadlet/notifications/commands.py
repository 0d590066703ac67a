"""What ``psquadlet notify`` runs: a test message now, or an event from outside the watcher.

``--event`` is run by systemd hooks (``OnFailure=``, ``ExecStopPost=``) of a managed unit, so
that unhealthy/restarted reach the operator in the timer mode too, where no daemon watches.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from psquadlet import model
from psquadlet.errors import UsageError
from psquadlet.notifications import settings as settings_mod
from psquadlet.notifications.deliver import ChannelResult, Log, Notifier
from psquadlet.notifications.message import render
from psquadlet.notifications.outbox import Pending
from psquadlet.notifications.settings import NotificationSettings
from psquadlet.watch.events import Event, EventKind
from psquadlet.watch.state import FileStateStore


def settings_of(config: model.Config) -> NotificationSettings:
    """The configuration's ``[notifications]`` settings (no channels when it has none)."""
    wired = getattr(config, "notifications", None)
    if isinstance(wired, NotificationSettings):
        return wired
    # Until config.parse_config carries the table itself: read it from the same file.
    if Path(config.source).is_file():
        return settings_mod.from_file(config.source)
    return NotificationSettings()


def build(
    settings: NotificationSettings, state_dir: str | Path, log: Log | None = None
) -> Notifier:
    """The notifier for a watcher or a hook; reads the URLs file (ConfigError when unsafe)."""
    return Notifier(settings, state_dir, settings_mod.load_urls(settings), log=log)


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


def send_event(
    config: model.Config, kind: EventKind, unit: str, detail: str = ""
) -> list[ChannelResult]:
    """Queue ``kind`` for the container run by ``unit`` and flush at once (``--event``)."""
    settings = settings_of(config)
    _require(settings, None)
    spec = next((s for s in config.containers if unit in (s.unit_name, s.name)), None)
    if spec is None:
        raise UsageError(f"no container runs unit {unit!r} in {config.source}")
    state = FileStateStore(config.watch.state_dir).load().get(spec.name)
    notifier = build(settings, config.watch.state_dir)
    notifier.emit(
        Event(
            kind,
            spec.name,
            spec.unit_name,
            spec.image,
            time.time(),
            old_digest=state.running_digest,
            new_digest=state.running_digest,
            detail=detail,
        )
    )
    return notifier.flush(force=True)
