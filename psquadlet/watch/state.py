"""The watcher's memory: one JSON file, written atomically, and a lock for whole passes.

The state is what makes a nightly job safe to run unattended: it remembers which digest was
rolled back (so a bad image is not tried again every night), which image to roll back to,
and the phase of an upgrade in flight, so that a watcher killed half-way can put the unit
back into a running state at its next start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from psquadlet.watch.interfaces import LockedError, WatchError

STATE_VERSION = 1
STATE_FILE = "state.json"
LOCK_FILE = "lock"
HISTORY_LIMIT = 50

# Phases of an upgrade in flight, in order. Recovery looks at the last one recorded.
PHASE_PULLING = "pulling"
PHASE_RESTARTING = "restarting"
PHASE_CHECKING = "checking"
PHASE_ROLLING_BACK = "rolling-back"
PHASES = (PHASE_PULLING, PHASE_RESTARTING, PHASE_CHECKING, PHASE_ROLLING_BACK)


@dataclass(frozen=True)
class HistoryEntry:
    time: float
    action: str  # upgraded | rolled-back | recovered | available | held-back
    from_digest: str
    to_digest: str
    reason: str


@dataclass(frozen=True)
class BadDigest:
    digest: str
    time: float
    reason: str


@dataclass(frozen=True)
class ContainerState:
    name: str
    image: str = ""
    last_check: float | None = None
    last_run: float | None = None
    last_result: str = ""
    running_digest: str = ""
    running_image_id: str = ""
    remote_digest: str = ""
    previous_digest: str = ""
    previous_image_id: str = ""
    kept_image_ids: tuple[str, ...] = ()
    available_digest: str = ""
    bad_digests: tuple[BadDigest, ...] = ()
    phase: str = ""
    phase_digest: str = ""
    phase_image_id: str = ""
    phase_started: float | None = None
    history: tuple[HistoryEntry, ...] = ()

    def is_bad(self, digest: str) -> BadDigest | None:
        for bad in self.bad_digests:
            if bad.digest == digest:
                return bad
        return None

    def with_history(self, entry: HistoryEntry) -> ContainerState:
        return dataclasses.replace(self, history=(*self.history, entry)[-HISTORY_LIMIT:])


@dataclass(frozen=True)
class WatchState:
    containers: tuple[ContainerState, ...] = ()
    version: int = STATE_VERSION
    notes: tuple[str, ...] = field(default=(), compare=False)
    """Warnings from loading (e.g. a corrupt file moved aside); never written."""

    def get(self, name: str) -> ContainerState:
        for cs in self.containers:
            if cs.name == name:
                return cs
        return ContainerState(name=name)

    def put(self, cs: ContainerState) -> WatchState:
        others = tuple(c for c in self.containers if c.name != cs.name)
        return dataclasses.replace(
            self, containers=tuple(sorted((*others, cs), key=lambda c: c.name))
        )


def to_json(state: WatchState) -> str:
    data = {
        "version": state.version,
        "containers": {cs.name: _cs_dict(cs) for cs in state.containers},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _cs_dict(cs: ContainerState) -> dict[str, Any]:
    data = dataclasses.asdict(cs)
    del data["name"]
    return data


def from_json(text: str) -> WatchState:
    """Parse a state file; unknown keys are ignored so that an older psquadlet can read it."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("containers"), dict):
        raise ValueError("not a psquadlet state file")
    containers = []
    for name, raw in data["containers"].items():
        if not isinstance(raw, dict):
            raise ValueError(f"container {name!r}: not an object")
        containers.append(_cs_from(str(name), raw))
    return WatchState(containers=tuple(sorted(containers, key=lambda c: c.name)))


def _cs_from(name: str, raw: dict[str, Any]) -> ContainerState:
    known = {f.name for f in dataclasses.fields(ContainerState)}
    values: dict[str, Any] = {k: v for k, v in raw.items() if k in known and k != "name"}
    values["history"] = tuple(HistoryEntry(**h) for h in raw.get("history", ()))
    values["bad_digests"] = tuple(BadDigest(**b) for b in raw.get("bad_digests", ()))
    values["kept_image_ids"] = tuple(raw.get("kept_image_ids", ()))
    return ContainerState(name=name, **values)


class FileStateStore:
    """``STATE_DIR/state.json`` and ``STATE_DIR/lock``."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, STATE_FILE)
        self.lock_path = os.path.join(state_dir, LOCK_FILE)

    def load(self) -> WatchState:
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return WatchState()
        except OSError as e:
            raise WatchError(f"cannot read state file {self.path}: {e.strerror}") from e
        try:
            return from_json(text)
        except (ValueError, TypeError) as e:
            # Only a foreign or hand-edited file gets here (writes are atomic): keep it for
            # inspection and start afresh rather than refusing to run every night.
            aside = f"{self.path}.corrupt-{int(time.time())}"
            os.replace(self.path, aside)
            return WatchState(notes=(f"state file {self.path} was unreadable ({e}); "
                                     f"moved to {aside}, starting with an empty state",))

    def save(self, state: WatchState) -> None:
        try:
            self._save(state)
        except OSError as e:
            raise WatchError(f"cannot write state file {self.path}: "
                             f"{e.strerror or e}") from e

    def _save(self, state: WatchState) -> None:
        os.makedirs(self.state_dir, mode=0o755, exist_ok=True)
        tmp = f"{self.path}.tmp-{os.getpid()}"
        data = to_json(state).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.state_dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        try:
            os.makedirs(self.state_dir, mode=0o755, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise WatchError(f"cannot open lock file {self.lock_path}: "
                             f"{e.strerror or e}") from e
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise LockedError(
                    f"another psquadlet pass holds {self.lock_path} (pid {holder}); "
                    "not starting a second one"
                ) from e
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)
