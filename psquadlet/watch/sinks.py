"""The event sinks a pass reports to, built from the configuration, and what follows a pass.

``build_sinks`` gives the notifier only when ``[notifications]`` has channels and the metrics
writer only when ``[metrics]`` is set; with neither, the pass keeps the core's ``NullSink``
and nothing of ``psquadlet.notifications``, ``psquadlet.metrics`` or ``prometheus_client`` is
imported. ``Sinks.after_pass`` flushes the notifications (bounded by the channel timeout:
all channels are sent in parallel by short child processes that are killed at the deadline)
and rewrites the metrics file from the state the pass saved. Neither ever raises: a channel
that fails keeps its messages for the next pass or the next ``psquadlet notify`` hook.

The daemon calls these in its forked pass process (``app.ForkedRunner``), so the idle
daemon never holds them; ``psquadlet upgrade`` calls them in its own process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from psquadlet.errors import PsquadletError
from psquadlet.model import Config
from psquadlet.watch.events import EventSink, Fanout, NullSink
from psquadlet.watch.interfaces import Log

if TYPE_CHECKING:
    from psquadlet.metrics import MetricsWriter
    from psquadlet.notifications.deliver import Notifier


@dataclass
class Sinks:
    notifier: Notifier | None = None
    metrics: MetricsWriter | None = None
    events: EventSink = field(default_factory=NullSink)

    def after_pass(self, log: Log) -> None:
        """Send what the pass queued (bounded) and rewrite the metrics. Never raises."""
        if self.notifier is not None:
            try:
                self.notifier.flush()
            except Exception as exc:  # the notifier never raises; belt and braces
                log.warning(f"notifications: flush failed: {exc}")
        if self.metrics is not None and not self.metrics.write():
            log.warning(f"metrics: {self.metrics.last_error}")


def build_sinks(config: Config, state_dir: str, log: Log) -> Sinks:
    """The configured sinks; an unusable URLs file is logged and notifications left off."""
    notifier = None
    settings = config.notifications
    if settings is not None and settings.channels:
        from psquadlet.notifications.commands import build  # noqa: PLC0415 - only when used

        try:
            notifier = build(settings, state_dir, log)
        except PsquadletError as exc:
            log.error(f"notifications are off for this pass: {exc}")
    metrics = None
    if config.metrics is not None:
        from psquadlet.metrics import MetricsWriter  # noqa: PLC0415 - only when used

        metrics = MetricsWriter(state_dir, config.metrics.textfile_dir)
    chosen: list[EventSink] = [s for s in (notifier, metrics) if s is not None]
    if not chosen:
        return Sinks()
    events = chosen[0] if len(chosen) == 1 else Fanout(*chosen)
    return Sinks(notifier, metrics, events)


@contextmanager
def reporting(config: Config, state_dir: str, log: Log) -> Iterator[Sinks]:
    """``with reporting(...) as sinks: deps.events = sinks.events; ...``: after_pass at the end,
    also when the pass raised (what it queued before failing is still sent)."""
    sinks = build_sinks(config, state_dir, log)
    try:
        yield sinks
    finally:
        sinks.after_pass(log)
