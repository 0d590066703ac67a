"""Prometheus metrics as a text file for node_exporter's textfile collector.

After each pass and on each event the watcher writes ``psquadlet.prom`` into the collector's
folder (Debian's default ``/var/lib/prometheus/node-exporter``, ``[metrics] textfile_dir``).
The exposition is ``prometheus_client``'s (``generate_latest``); the file is replaced
atomically (``fsutil.atomic_write``: temp file, fsync, rename; the temp name does not end in
``.prom``, so the collector never reads half a file).

Facts come from the watcher's state file (read through ``psquadlet.watch.state``, tolerant of
missing fields) and from what only events know, kept in ``STATE_DIR/metrics.json``: counts of
upgrades, rollbacks and restarts, the health state, image versions. ``prometheus_client`` is
imported only when a file is written; ``generate`` never imports this module.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from psquadlet.errors import ConfigError, PsquadletError, raise_collected
from psquadlet.fsutil import atomic_write, open_lock, read_text, safe_folder
from psquadlet.watch.events import Event, EventKind
from psquadlet.watch.state import MAX_TIME, STATE_FILE, ContainerState, WatchState, from_json

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

DEFAULT_TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
FILE_NAME = "psquadlet.prom"
EVENTS_FILE = "metrics.json"
HEALTH_STATES = ("healthy", "unhealthy", "restarted", "unknown")
_HEALTH = {
    EventKind.HEALTHY: "healthy",
    EventKind.UNHEALTHY: "unhealthy",
    EventKind.RESTARTED: "restarted",
    EventKind.GAVE_UP: "unhealthy",  # still running, unhealthy; psquadlet retries on a backoff
    EventKind.UPGRADED: "healthy",  # passed the health gate
}
_COUNTED = {
    EventKind.UPGRADED: "upgrades",
    EventKind.ROLLED_BACK: "rollbacks",
    EventKind.RESTARTED: "restarts",
}
_CHANGES_IMAGE = ("upgraded", "rolled-back", "recovered")
_FAILED = ("error", "failed")  # last_result words of a check that did not work
Locate = Callable[[Sequence[str]], "int | None"]


@dataclass(frozen=True)
class MetricsSettings:
    """``[metrics]``: present means enabled."""

    textfile_dir: str = DEFAULT_TEXTFILE_DIR


def parse_metrics(
    table: Any, source: str, base: Sequence[str] = ("metrics",), locate: Locate | None = None
) -> MetricsSettings:
    """Validate ``[metrics]`` (one key, ``textfile_dir``)."""
    errors: list[ConfigError] = []

    def error(key: str, message: str) -> None:
        path = [*base, key] if key else list(base)
        errors.append(
            ConfigError(source, locate(path) if locate else None, ".".join(path), message)
        )

    if not isinstance(table, Mapping):
        error("", "expected a table")
        raise_collected(errors)
    for key in table:
        if key != "textfile_dir":
            error(str(key), f"unknown key {key!r}")
    folder = table.get("textfile_dir", DEFAULT_TEXTFILE_DIR)
    if not isinstance(folder, str) or not folder.startswith("/"):
        error("textfile_dir", "must be an absolute path")
    raise_collected(errors)
    return MetricsSettings(str(folder))


# --------------------------------------------------------------------------- event facts


def _load_facts(path: Path) -> dict[str, dict[str, Any]]:
    return _parse_facts(read_text(path) or "{}")


def _parse_facts(text: str) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested too deep
        return {}
    containers = data.get("containers") if isinstance(data, dict) else None
    if not isinstance(containers, dict):
        return {}
    return {str(k): v for k, v in containers.items() if isinstance(v, dict)}


def record_event(facts: dict[str, dict[str, Any]], event: Event) -> None:
    """Fold one event into the per-container facts only events know."""
    if not event.container:
        return
    entry = facts.setdefault(event.container, {})
    counter = _COUNTED.get(event.kind)
    if counter is not None:
        entry[counter] = int(entry.get(counter, 0)) + 1
    health = _HEALTH.get(event.kind)
    if health is not None:
        entry["health"] = health
    if event.kind in (EventKind.UPGRADED, EventKind.ROLLED_BACK, EventKind.CRASH_RECOVERED):
        version = event.new_version if event.kind is EventKind.UPGRADED else event.old_version
        entry["version"] = version
        created = dict(event.extra).get("image_created", "")
        entry["image_created"] = float(created) if created.replace(".", "", 1).isdigit() else None


# --------------------------------------------------------------------------- the facts


def _history_count(cs: ContainerState, action: str) -> int:
    return sum(1 for h in cs.history if getattr(h, "action", "") == action)


def _running_since(cs: ContainerState) -> float | None:
    for entry in reversed(cs.history):
        if getattr(entry, "action", "") in _CHANGES_IMAGE:
            return float(entry.time)
    return None


def _count(fact: Mapping[str, Any], key: str) -> int:
    value = fact.get(key, 0)
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**53
    return value if ok else 0


def _time(value: object) -> float | None:
    """A recorded time read from the facts: None unless a Unix time up to year 9999."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 < value <= MAX_TIME else None


@dataclass(frozen=True)
class ContainerFacts:
    """One container's facts, as the metrics and ``status --json`` both show them."""

    last_check: float | None
    last_result: str  # the first word of the state's last_result ("upgraded", "error", ...)
    check_ok: bool | None  # None: never checked
    upgrades: int
    rollbacks: int
    restarts: int
    running_since: float | None  # when the running image was installed (upgrade, rollback)
    image_created: float | None  # when the running image was built, where known
    update_available: bool
    available_digest: str
    health: str  # one of HEALTH_STATES
    image: str
    digest: str
    version: str
    refused_digests: int
    upgrade_in_progress: bool


def container_facts(cs: ContainerState, fact: Mapping[str, Any]) -> ContainerFacts:
    """Fold the state file's entry and the event facts (``metrics.json``) into one view."""
    word = cs.last_result.split(":", 1)[0].strip() if cs.last_result else ""
    built = fact.get("image_created") or getattr(cs, "running_created", None)
    health = str(fact.get("health", "unknown"))
    return ContainerFacts(
        last_check=cs.last_check,
        last_result=word,
        check_ok=(word not in _FAILED) if word else None,
        upgrades=max(_count(fact, "upgrades"), _history_count(cs, "upgraded")),
        rollbacks=max(_count(fact, "rollbacks"), _history_count(cs, "rolled-back")),
        restarts=_count(fact, "restarts"),
        running_since=_running_since(cs),
        image_created=_time(built),
        update_available=bool(cs.available_digest) and cs.available_digest != cs.running_digest,
        available_digest=cs.available_digest,
        health=health if health in HEALTH_STATES else "unknown",
        image=cs.image,
        digest=cs.running_digest,
        version=str(fact.get("version", "") or ""),
        refused_digests=len(cs.bad_digests),
        upgrade_in_progress=bool(cs.phase),
    )


def read_facts(state_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The event facts of ``STATE_DIR/metrics.json`` (empty when missing or unreadable)."""
    from psquadlet.host import HostFileError, read_host_text  # noqa: PLC0415 - status only

    try:
        return _parse_facts(read_host_text(Path(state_dir) / EVENTS_FILE))
    except (OSError, HostFileError):  # missing, or not a small regular text file
        return {}


# --------------------------------------------------------------------------- the collector


class StateCollector:
    """A prometheus_client collector over one snapshot of state and event facts."""

    def __init__(
        self, state: WatchState, facts: Mapping[str, Mapping[str, Any]], now: float
    ) -> None:
        self.state = state
        self.facts = facts
        self.now = now

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (  # noqa: PLC0415 - optional extra, loaded late
            CounterMetricFamily,
            GaugeMetricFamily,
        )

        def gauge(name: str, doc: str, labels: Sequence[str] = ("container",)) -> Any:
            return GaugeMetricFamily(name, doc, labels=list(labels))

        checked = gauge("psquadlet_last_check_timestamp_seconds", "When the last check ran.")
        success = gauge("psquadlet_last_check_success", "1 when the last check did not fail.")
        result = gauge(
            "psquadlet_last_check_result",
            "The last check's outcome (value 1).",
            ("container", "result"),
        )
        upgrades = CounterMetricFamily(
            "psquadlet_upgrades", "Upgrades that passed the health gate.", labels=["container"]
        )
        rollbacks = CounterMetricFamily(
            "psquadlet_rollbacks", "Upgrades rolled back.", labels=["container"]
        )
        restarts = CounterMetricFamily(
            "psquadlet_restarts",
            "Restarts of the unit by systemd (health check failures).",
            labels=["container"],
        )
        since = gauge(
            "psquadlet_image_running_since_timestamp_seconds",
            "When the running image was installed (upgrade, rollback, recovery).",
        )
        created = gauge(
            "psquadlet_image_created_timestamp_seconds",
            "When the running image was built (where known).",
        )
        available = gauge(
            "psquadlet_update_available", "1 when a newer image is available but not installed."
        )
        health = gauge(
            "psquadlet_health_state",
            "The container's health (1 for the current state).",
            ("container", "state"),
        )
        info = gauge(
            "psquadlet_image_info",
            "The running image (value 1).",
            ("container", "image", "digest", "version"),
        )
        bad = gauge("psquadlet_refused_digests", "Digests rolled back and not tried again.")
        busy = gauge("psquadlet_upgrade_in_progress", "1 while an upgrade is half done.")
        known = {cs.name for cs in self.state.containers}
        # A container the watcher has not checked yet still has health events (the hooks).
        unchecked = tuple(ContainerState(name) for name in sorted(self.facts) if name not in known)
        for cs in (*self.state.containers, *unchecked):
            name = cs.name
            f = container_facts(cs, self.facts.get(name, {}))
            if f.last_check is not None:
                checked.add_metric([name], float(f.last_check))
            if f.check_ok is not None:
                success.add_metric([name], 1.0 if f.check_ok else 0.0)
                result.add_metric([name, f.last_result], 1.0)
            upgrades.add_metric([name], f.upgrades)
            rollbacks.add_metric([name], f.rollbacks)
            restarts.add_metric([name], f.restarts)
            if f.running_since is not None:
                since.add_metric([name], f.running_since)
            if f.image_created is not None:
                created.add_metric([name], f.image_created)
            available.add_metric([name], 1.0 if f.update_available else 0.0)
            for word in HEALTH_STATES:
                health.add_metric([name, word], 1.0 if word == f.health else 0.0)
            if f.digest:
                info.add_metric([name, f.image, f.digest, f.version], 1.0)
            bad.add_metric([name], float(f.refused_digests))
            busy.add_metric([name], 1.0 if f.upgrade_in_progress else 0.0)
        written = GaugeMetricFamily(
            "psquadlet_metrics_written_timestamp_seconds",
            "When psquadlet wrote this file.",
            value=self.now,
        )
        yield from (
            checked,
            success,
            result,
            upgrades,
            rollbacks,
            restarts,
            since,
            created,
            available,
            health,
            info,
            bad,
            busy,
            written,
        )


def exposition(state: WatchState, facts: Mapping[str, Mapping[str, Any]], now: float) -> str:
    """The text exposition (format 0.0.4) of one snapshot."""
    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state, facts, now))
    return generate_latest(registry).decode("utf-8")


# --------------------------------------------------------------------------- the writer


class MetricsWriter:
    """Writes ``TEXTFILE_DIR/psquadlet.prom``; an ``EventSink`` too. Never raises."""

    def __init__(
        self,
        state_dir: str | Path,
        textfile_dir: str | Path = DEFAULT_TEXTFILE_DIR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state_path = Path(state_dir) / STATE_FILE
        self.facts_path = Path(state_dir) / EVENTS_FILE
        self.path = Path(textfile_dir) / FILE_NAME
        self.clock = clock
        self.last_error = ""

    def emit(self, event: Event) -> None:
        """Fold the event into the facts file and rewrite the metrics."""
        try:
            safe_folder(self.facts_path.parent, "state folder")
            # The watcher and a `notify --event` hook may both count: one at a time.
            lock = open_lock(f"{self.facts_path}.lock", 0o644)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                facts = _load_facts(self.facts_path)
                record_event(facts, event)
                body = json.dumps({"version": 1, "containers": facts}, indent=1, sort_keys=True)
                atomic_write(self.facts_path, body + "\n")
            finally:
                os.close(lock)
        except (OSError, ValueError, PsquadletError) as exc:
            self.last_error = f"cannot record {event.kind.value} for metrics: {exc}"
            return
        self.write()

    def load_state(self) -> WatchState:
        """The watcher's state, read only (a damaged file is the watcher's to move aside)."""
        try:
            return from_json(read_text(self.state_path) or '{"containers": {}}')
        except (ValueError, TypeError):
            return WatchState()

    def write(self, state: WatchState | None = None) -> bool:
        """Write the file from ``state`` (default: the state file); False on failure."""
        try:
            snapshot = state if state is not None else self.load_state()
            text = exposition(snapshot, _load_facts(self.facts_path), self.clock())
            # Only the folder itself: Debian's /var/lib/prometheus belongs to the prometheus
            # account; the temp file (O_EXCL, no links) and rename never follow a link there.
            safe_folder(self.path.parent, "metrics folder", parents=False, mode=None)
            atomic_write(self.path, text)
        except Exception as exc:  # metrics never break a pass
            self.last_error = f"cannot write {self.path}: {exc}"
            return False
        self.last_error = ""
        return True
