"""An event as a message an operator reads: host, unit, both digests and versions, what happened."""

from __future__ import annotations

import time
from dataclasses import dataclass

from psquadlet.watch.events import Event, EventKind

_WHAT = {
    EventKind.UPGRADED: "upgraded: the new image runs and passed the health check",
    EventKind.ROLLED_BACK: "rolled back: the new image failed the health check; the old one runs",
    EventKind.UPDATE_AVAILABLE: "update available (not installed: policy is notify)",
    EventKind.CHECK_FAILING: "the update check is failing",
    EventKind.CHECK_RECOVERED: "the update check works again",
    EventKind.UNHEALTHY: "the container is unhealthy",
    EventKind.RESTARTED: "systemd restarted the unit",
    EventKind.HEALTHY: "the container is healthy again",
    EventKind.GAVE_UP: "gave up restarting: the container keeps running, unhealthy",
    EventKind.BEHIND: "the followed tag is behind upstream",
    EventKind.CRASH_RECOVERED: "the watcher recovered a half-done upgrade",
    EventKind.TEST: "test message from psquadlet notify --test",
}

# An event of the key kind clears the quiet period of the value kinds: after "recovered",
# the next failure is news again.
CLEARS = {
    EventKind.CHECK_RECOVERED: (EventKind.CHECK_FAILING,),
    EventKind.HEALTHY: (EventKind.UNHEALTHY, EventKind.RESTARTED, EventKind.GAVE_UP),
}


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    kind: str
    key: str  # repeats of the same key are held back during the quiet period ("" never)
    time: float


def quiet_key(kind: EventKind, container: str, digest: str = "") -> str:
    return f"{kind.value}|{container}|{digest}"


# Events about the running container, not a change of image: one digest, the one that runs.
HEALTH_KINDS = (EventKind.UNHEALTHY, EventKind.RESTARTED, EventKind.HEALTHY, EventKind.GAVE_UP)


def _digest(digest: str, version: str) -> str:
    text = digest or "(unknown)"
    return f"{text} (version {version})" if version else text


def render(event: Event, host: str) -> Message:
    what = _WHAT[event.kind]
    unit = event.unit or "psquadlet"
    lines = [f"Host: {host}", f"Unit: {unit}"]
    if event.container:
        lines.append(f"Container: {event.container}")
    if event.image:
        lines.append(f"Image: {event.image}")
    lines.append(f"What happened: {what}")
    if event.kind in HEALTH_KINDS:
        if event.new_digest or event.new_version:
            lines.append(f"Running: {_digest(event.new_digest, event.new_version)}")
    else:
        if event.old_digest or event.old_version:
            lines.append(f"Before: {_digest(event.old_digest, event.old_version)}")
        if event.new_digest or event.new_version:
            lines.append(f"After: {_digest(event.new_digest, event.new_version)}")
    lines += [f"{key}: {value}" for key, value in event.extra]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(event.time))
    lines.append(f"Time: {stamp}")
    if event.detail:
        lines += ["", event.detail]
    short = what.split(":")[0].split(" (")[0]
    key = (
        ""
        if event.kind is EventKind.TEST
        else quiet_key(event.kind, event.container, event.new_digest)
    )
    return Message(
        title=f"[{host}] {unit}: {short}",
        body="\n".join(lines),
        kind=event.kind.value,
        key=key,
        time=event.time,
    )
