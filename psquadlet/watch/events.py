"""What happened, as typed events: the one thing notifications and metrics read.

The watcher's core reports each outcome an operator may have to act on through an
``EventSink`` (``emit(event)``). It never formats messages for a channel and never waits on
one: sinks queue (notifications keep a persistent outbox) and return at once. Health events
from systemd (a unit restarted after Podman's health check killed it) reach the same sinks
through ``psquadlet notify --hook`` run by the unit's ``ExecStopPost=``/``ExecStartPost=``,
and those of the health supervisor (``psquadlet heal``: unhealthy, gave-up, healthy) through
its own run, so the daemon and the timer mode tell the operator the same things.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol


class EventKind(str, enum.Enum):
    """The kinds of event; the value is the name used in TOML (``events = [...]``) and JSON."""

    UPGRADED = "upgraded"  # a new image runs and passed the health gate
    ROLLED_BACK = "rolled-back"  # a new image failed the gate; the old one runs again
    UPDATE_AVAILABLE = "update-available"  # policy "notify" (or a release outside the track)
    CHECK_FAILING = "check-failing"  # the registry check failed N passes in a row
    CHECK_RECOVERED = "check-recovered"  # the check works again after failing
    UNHEALTHY = "unhealthy"  # the running container's health check failed
    RESTARTED = "restarted"  # systemd restarted the unit (e.g. after HealthOnFailure=kill)
    HEALTHY = "healthy"  # healthy again after an unhealthy/restarted/gave-up event
    GAVE_UP = "gave-up"  # restart budget spent (or systemd's start limit hit): left running
    BEHIND = "behind"  # the followed tag is behind upstream (other registry / newer release)
    CRASH_RECOVERED = "crash-recovered"  # the watcher finished or undid a half-done upgrade
    TEST = "test"  # psquadlet notify --test


@dataclass(frozen=True)
class Event:
    """One event. Digests are ``algorithm:hex``; empty strings mean "not known"."""

    kind: EventKind
    container: str  # the [containers.NAME] table name ("" for host-wide events)
    unit: str  # the systemd unit, e.g. "perfsonar-testpoint.service"
    image: str  # the image reference followed, e.g. "ghcr.io/perfsonar/testpoint:systemd"
    time: float  # seconds since the epoch
    old_digest: str = ""
    new_digest: str = ""
    old_version: str = ""  # from the image's labels (org.opencontainers.image.version), if any
    new_version: str = ""
    detail: str = ""  # what happened, in one or a few lines (e.g. the health check's output)
    extra: tuple[tuple[str, str], ...] = field(default=())  # further facts, sorted pairs


class EventSink(Protocol):
    """Receives events; must return quickly and never raise for a channel's failure."""

    def emit(self, event: Event) -> None: ...


class NullSink:
    """The sink when nothing listens (no notifications, no metrics configured)."""

    def emit(self, event: Event) -> None:
        return None


class Fanout:
    """Several sinks behind one; a sink that raises is skipped, the others still get it."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception:  # noqa: S112 - a broken sink never breaks a pass
                continue
