"""What each managed container is doing, gathered from systemd, Podman and the watcher's state.

Every source is optional: a host without systemd as PID 1, a container that is not running, or
a watcher that never ran still gives a status with the parts that could be read, and says
which could not. Nothing here changes anything (the watcher's state file is read, never moved
aside or rewritten, even when it is unreadable).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from psquadlet import deps, host
from psquadlet.errors import PsquadletError
from psquadlet.host import Runner, run_command
from psquadlet.metrics import ContainerFacts, container_facts, read_facts
from psquadlet.model import Config
from psquadlet.watch import state as watch_state
from psquadlet.watch.schedule import next_run, read_machine_id
from psquadlet.watch.targets import Target, targets_from_config

BUNDLE_VERSION_FILE = "/var/lib/perfsonar/bundles/bundle_version"
JSON_SCHEMA = "psquadlet-status/1"


@dataclass(frozen=True)
class Event:
    time: float
    action: str
    from_digest: str
    to_digest: str
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "time": _iso(self.time),
            "action": self.action,
            "from_digest": self.from_digest,
            "to_digest": self.to_digest,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    unit: str
    container: str
    configured_image: str
    policy: str
    load_state: str = ""
    active_state: str = ""
    sub_state: str = ""
    running: bool = False
    image: str = ""
    image_id: str = ""
    digest: str = ""
    started_at: str = ""
    bundle_version: str = ""
    last_check: float | None = None
    next_check: float | None = None
    last_result: str = ""
    last_upgrade: Event | None = None
    last_rollback: Event | None = None
    release: str = ""  # which release runs and why (release tracking), "" when not tracking
    available: str = ""  # the newest release reported as available and not adopted
    pinned: str = ""  # psquadlet pin's reason
    behind: str = ""  # the followed tag is behind upstream (a warning)
    image_created: str = ""  # when the running image was built (shown, never a warning)
    blocked: tuple[watch_state.BadDigest, ...] = ()  # known-bad: rolled back or blocked
    notes: tuple[str, ...] = ()
    facts: ContainerFacts | None = None  # what the metrics say, from the watcher's files
    now: float = 0.0
    systemd_adapter: str = ""  # how the watcher reaches systemd here (deps.systemd_adapter)

    def facts_json(self) -> dict[str, object]:
        """The metrics' facts (psquadlet.metrics.container_facts), under the same names."""
        f = self.facts
        if f is None:
            return {}
        age = self.now - f.image_created if f.image_created else None
        return {
            "last_check_ok": f.check_ok,
            "upgrades": f.upgrades,
            "rollbacks": f.rollbacks,
            "restarts": f.restarts,
            "update_available": f.update_available,
            "available_digest": f.available_digest or None,
            "health": f.health,
            "running_digest": f.digest or None,
            "version": f.version or None,
            "image_created": _iso(f.image_created),
            "image_age_seconds": round(age) if age is not None else None,
            "running_since": _iso(f.running_since),
            "refused_digests": f.refused_digests,
            "upgrade_in_progress": f.upgrade_in_progress,
        }

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "unit": self.unit,
            "container": self.container,
            "configured_image": self.configured_image,
            "update_policy": self.policy,
            "unit_state": {
                "load": self.load_state,
                "active": self.active_state,
                "sub": self.sub_state,
            },
            "running": self.running,
            "image": self.image,
            "image_id": self.image_id,
            "digest": self.digest,
            "started_at": self.started_at,
            "bundle_version": self.bundle_version,
            "last_check": _iso(self.last_check),
            "next_check": _iso(self.next_check),
            "last_result": self.last_result,
            "last_upgrade": self.last_upgrade.to_json() if self.last_upgrade else None,
            "last_rollback": self.last_rollback.to_json() if self.last_rollback else None,
            "watch": self.facts_json(),
            "systemd_adapter": self.systemd_adapter or None,
            "release": self.release or None,
            "release_available": self.available or None,
            "pinned": self.pinned or None,
            "behind": self.behind or None,
            "image_created": self.image_created or None,
            "blocked": [
                {"digest": b.digest, "time": _iso(b.time), "reason": b.reason, "source": b.source}
                for b in self.blocked
            ],
            "notes": list(self.notes),
        }

    def text(self) -> str:
        state = "/".join(s for s in (self.active_state, self.sub_state) if s) or "unknown"
        lines = [
            f"{self.name} ({self.unit}): {state}",
            f"  image:          {self.image or self.configured_image}"
            + ("" if self.image else " (configured; container not found)"),
        ]
        _rows(
            lines,
            ("digest", self.digest),
            ("image id", self.image_id[:12]),
            ("image built", self.image_created),
            ("perfSONAR", self.bundle_version),
            ("update policy", self.policy),
            ("release", self.release),
            ("available", self.available),
            ("pinned", self.pinned),
            ("behind", self.behind),
            ("watcher via", self.systemd_adapter),
        )
        lines.append(f"  last check:     {_iso(self.last_check) or 'never'}")
        if self.last_result:
            lines.append(f"  last result:    {self.last_result}")
        lines.append(f"  next check:     {_iso(self.next_check) or 'not scheduled'}")
        for label, event in (
            ("last upgrade", self.last_upgrade),
            ("last rollback", self.last_rollback),
        ):
            if event is not None:
                lines.append(
                    f"  {label + ':':15} {_iso(event.time)} {_short(event.from_digest)} -> "
                    f"{_short(event.to_digest)}" + (f" ({event.reason})" if event.reason else "")
                )
        lines.extend(
            f"  blocked:        {_short(b.digest)} ({b.source}: {b.reason})" for b in self.blocked
        )
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines) + "\n"


def _rows(lines: list[str], *rows: tuple[str, str]) -> None:
    """``  label:        value`` for each row with a value."""
    lines.extend(f"  {label + ':':15} {value}" for label, value in rows if value)


@dataclass(frozen=True)
class Probes:
    """Where status looks; tests replace the runner (only for what real programs cannot do)."""

    run: Runner = run_command
    now: Callable[[], float] = field(default=lambda: dt.datetime.now().timestamp())
    machine_id: Callable[[], str] = read_machine_id


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "?"


def unit_state(run: Runner, unit: str) -> tuple[dict[str, str], str]:
    return host.systemctl_show(run, unit, ("LoadState", "ActiveState", "SubState"))


def inspect_json(run: Runner, kind: str, name: str) -> dict[str, Any] | None:
    code, out = run(["podman", kind, "inspect", name])
    if code != 0:
        return None
    try:
        data = json.loads(out)
    except ValueError:
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    return None


def _pick_digest(image: dict[str, Any], configured_name: str) -> str:
    """The digest the image has in the configured repository (what the registry calls it)."""
    for repo_digest in image.get("RepoDigests") or ():
        name, _, digest = str(repo_digest).partition("@")
        if name == configured_name:
            return digest
    fallback = image.get("Digest")
    return str(fallback) if fallback else ""


def load_state(state_dir: str) -> tuple[watch_state.WatchState, str]:
    """The watcher's state, read only; a note instead of an exception when it is unreadable."""
    path = os.path.join(state_dir, watch_state.STATE_FILE)
    try:
        text = host.read_host_text(Path(path))
    except FileNotFoundError:
        return watch_state.WatchState(), ""
    except host.HostFileError as e:
        return watch_state.WatchState(), f"cannot read {path}: {e.reason}"
    try:
        return watch_state.from_json(text), ""
    except (ValueError, TypeError) as e:
        return watch_state.WatchState(), f"watcher state {path} is unreadable: {e}"


def _last(history: Sequence[watch_state.HistoryEntry], action: str) -> Event | None:
    """The latest entry of ``action``, as the move it made: from one image to another.

    The watcher records a rollback as (previous, tried); the move the rollback made is the
    other way round, from the image that failed to the one restored.
    """
    for entry in reversed(history):
        if entry.action != action:
            continue
        if action == "rolled-back":
            return Event(entry.time, action, entry.to_digest, entry.from_digest, entry.reason)
        return Event(entry.time, action, entry.from_digest, entry.to_digest, entry.reason)
    return None


def container_status(
    config: Config,
    name: str,
    probes: Probes,
    state: watch_state.WatchState,
    facts: Mapping[str, Mapping[str, Any]] | None = None,
) -> ContainerStatus:
    spec = config.container(name)
    notes: list[str] = []
    units, note = unit_state(probes.run, spec.unit_name)
    if note:
        notes.append(note)
    container = spec.effective_container_name
    values: dict[str, Any] = {}
    info = inspect_json(probes.run, "container", container)
    if info is None:
        notes.append(f"container {container} not found by podman")
    else:
        st = info.get("State") or {}
        values["running"] = bool(st.get("Running"))
        values["started_at"] = str(st.get("StartedAt") or "")
        values["image"] = str(info.get("ImageName") or "")
        values["image_id"] = str(info.get("Image") or "")
        image = (
            inspect_json(probes.run, "image", values["image_id"]) if values["image_id"] else None
        )
        if image is not None:
            values["digest"] = _pick_digest(image, spec.image_ref.name)
            values["image_created"] = str(image.get("Created") or "")
        if values["running"] and host.container_variant(spec) is not None:
            code, out = probes.run(["podman", "exec", container, "cat", BUNDLE_VERSION_FILE])
            if code == 0:
                values["bundle_version"] = out.strip()
            else:
                notes.append(f"cannot read {BUNDLE_VERSION_FILE} in {container}")
    cs = state.get(name)
    upd = spec.update
    (target,) = [t for t in targets_from_config(config) if t.name == name]
    next_check = None
    now = probes.now()
    if upd.policy != "off":
        next_check = max(now, next_run(target.schedule, cs.last_check, now, probes.machine_id()))
    return ContainerStatus(
        name=name,
        unit=spec.unit_name,
        container=container,
        configured_image=spec.image,
        policy=upd.policy,
        load_state=units.get("LoadState", ""),
        active_state=units.get("ActiveState", ""),
        sub_state=units.get("SubState", ""),
        last_check=cs.last_check,
        next_check=next_check,
        last_result=cs.last_result,
        last_upgrade=_last(cs.history, "upgraded"),
        last_rollback=_last(cs.history, "rolled-back"),
        release=release_line(target, cs),
        available=cs.announced_tags[-1] if cs.announced_tags and target.tracks_releases else "",
        pinned=cs.pinned,
        behind=cs.behind,
        blocked=cs.bad_digests,
        notes=tuple(notes),
        facts=container_facts(cs, (facts or {}).get(name, {})),
        now=now,
        **values,
    )


def release_line(target: Target, cs: watch_state.ContainerState) -> str:
    """Which release the unit runs and why (``[update] track``), or ""."""
    adopted = cs.release_tag and cs.release_base == str(target.image)
    if not adopted and not target.tracks_releases:
        return ""
    if not adopted:
        return f"{target.image.tag} as configured (track {target.track!r})"
    entry = next((h for h in reversed(cs.history) if h.action == "upgraded"), None)
    when = f" on {_iso(entry.time)}" if entry else ""
    how = {"retag": "the configured tag points at it"}.get(cs.release_how, cs.release_how)
    why = f"adopted{when} (track {target.track!r})" if target.tracks_releases else "upgrade --to"
    return f"{cs.release_tag}, {why}" + (f"; {how}" if how else "")


def collect(
    config: Config, names: Sequence[str] = (), probes: Probes | None = None
) -> tuple[ContainerStatus, ...]:
    """Status of the named containers (all when none are named); unknown names raise KeyError."""
    probes = probes or Probes()
    try:
        adapter = deps.systemd_adapter()
    except PsquadletError as e:
        adapter = f"none ({e})"
    state, note = load_state(config.watch.state_dir)
    facts = read_facts(config.watch.state_dir)
    chosen = list(names) or [c.name for c in config.containers]
    results = []
    for name in chosen:
        status = container_status(config, name, probes, state, facts)
        status = dataclasses.replace(status, systemd_adapter=adapter)
        if note:
            status = dataclasses.replace(status, notes=(*status.notes, note))
        results.append(status)
    return tuple(results)


def all_active(statuses: Sequence[ContainerStatus]) -> bool:
    """What the exit code says: 0 when every unit shown is active, 3 otherwise."""
    return all(s.active_state == "active" for s in statuses)


def dumps(statuses: Sequence[ContainerStatus]) -> str:
    doc = {
        "schema": JSON_SCHEMA,
        "ok": all_active(statuses),
        "containers": [s.to_json() for s in statuses],
    }
    return json.dumps(doc, indent=2) + "\n"
