"""The watcher's memory: one JSON file, written atomically, and a lock for whole passes.

The state is what makes a nightly job safe to run unattended: it remembers which digest was
rolled back (so a bad image is not tried again every night), which image to roll back to,
and the phase of an upgrade in flight, so that a watcher killed half-way can put the unit
back into a running state at its next start.

Format: ``{"version": N, "containers": {NAME: {...}}}``. Loading validates every field's
type; unknown keys are ignored (a newer psquadlet may add some within a version) and older
versions are migrated. A file that is not a valid state in any way (not UTF-8, not JSON,
nested absurdly deep, a field of the wrong type, larger than ``MAX_STATE_BYTES``) is moved
aside and the watcher starts afresh. A file of a *newer* version is never moved aside (it
holds the known-bad digests a newer psquadlet recorded): passes refuse to run on it with
``StateTooNewError`` and leave it untouched, read-only views (``peek``) show a note.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import math
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from psquadlet.errors import UnsafeFolderError
from psquadlet.fsutil import atomic_write, open_lock, safe_folder
from psquadlet.watch.interfaces import LockedError, WatchError

STATE_VERSION = 2
"""1: the first format. 2: adds ``check_failures`` and ``BadDigest.source``."""
STATE_FILE = "state.json"
LOCK_FILE = "lock"
HISTORY_LIMIT = 50
BAD_LIMIT = 20  # known-bad digests kept from rollbacks (operator blocks are always kept)
MAX_STATE_BYTES = 16 * 1024 * 1024
MAX_TIME = 253402300799.0  # 9999-12-31T23:59:59Z: every recorded time is a Unix time up to it

# Phases of an upgrade in flight, in order. Recovery looks at the last one recorded.
PHASE_PULLING = "pulling"
PHASE_RESTARTING = "restarting"
PHASE_CHECKING = "checking"
PHASE_ROLLING_BACK = "rolling-back"
PHASES = (PHASE_PULLING, PHASE_RESTARTING, PHASE_CHECKING, PHASE_ROLLING_BACK)

# Where a known-bad digest came from
SOURCE_ROLLBACK = "rollback"
SOURCE_OPERATOR = "operator"  # psquadlet block


class StateFormatError(ValueError):
    """The text is not a psquadlet state file (or not a valid one)."""


class StateTooNewError(StateFormatError):
    """The file was written by a newer psquadlet: its format is unknown here."""

    def __init__(self, version: int) -> None:
        super().__init__(
            f"written by a newer psquadlet (state version {version}, this one "
            f"knows up to {STATE_VERSION})"
        )
        self.version = version


class StateTooNew(WatchError):
    """A pass refuses to run on a state file of a newer version (and leaves it untouched)."""


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
    source: str = SOURCE_ROLLBACK  # rollback | operator


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
    check_failures: int = 0  # consecutive failed registry checks
    # Release tracking (``[update] track``): the release tag the unit runs instead of the
    # configured one, and the configured image it applies to (another image voids it).
    release_tag: str = ""
    release_base: str = ""
    release_how: str = ""  # "drop-in PATH" | "retag" (the configured tag names the release)
    phase_release: str = ""  # the release tag an upgrade in flight moves to
    previous_release: str = ""  # the release tag it ran before ("" = the configured tag)
    rejected_tags: tuple[str, ...] = ()  # releases rolled back or known-bad: never fetched
    announced_tags: tuple[str, ...] = ()  # releases reported as available (once each)
    pinned: str = ""  # psquadlet pin: why this container stays where it is
    behind: str = ""  # why the followed tag is behind upstream (watch/behind.py), "" if not
    behind_checked: float | None = None  # last look at upstream's other registry
    # min_age's soak: the digest the tag pointed to when this watcher first saw it, and when.
    seen_digest: str = ""
    seen_since: float | None = None

    def is_bad(self, digest: str) -> BadDigest | None:
        for bad in self.bad_digests:
            if bad.digest == digest:
                return bad
        return None

    def with_history(self, entry: HistoryEntry) -> ContainerState:
        return dataclasses.replace(self, history=(*self.history, entry)[-HISTORY_LIMIT:])


def with_bad(bad: tuple[BadDigest, ...], new: BadDigest) -> tuple[BadDigest, ...]:
    """*bad* with *new* replacing any entry for its digest; the oldest rollback entries beyond
    BAD_LIMIT are dropped, an operator's blocks never are."""
    rest = [b for b in bad if b.digest != new.digest]
    rollbacks = [b for b in (*rest, new) if b.source != SOURCE_OPERATOR]
    keep = {id(b) for b in rollbacks[-BAD_LIMIT:]}
    return tuple(b for b in (*rest, new) if b.source == SOURCE_OPERATOR or id(b) in keep)


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
        "version": STATE_VERSION,
        "containers": {cs.name: _cs_dict(cs) for cs in state.containers},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _cs_dict(cs: ContainerState) -> dict[str, Any]:
    data = dataclasses.asdict(cs)
    del data["name"]
    return data


def from_json(text: str) -> WatchState:
    """Parse and validate a state file; raises StateFormatError (a ValueError).

    Unknown keys are ignored; older versions are migrated; a newer version raises
    StateTooNewError.
    """
    try:
        data = json.loads(text)
    except RecursionError as e:
        raise StateFormatError("nested too deeply") from e
    except ValueError as e:
        raise StateFormatError(f"not JSON: {e}") from e
    if not isinstance(data, dict):
        raise StateFormatError("not a psquadlet state file (not a JSON object)")
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise StateFormatError(f"version: expected a positive integer, got {version!r:.40}")
    if version > STATE_VERSION:
        raise StateTooNewError(version)
    containers = data.get("containers")
    if not isinstance(containers, dict):
        raise StateFormatError("not a psquadlet state file (no 'containers' object)")
    out = [
        _decode(ContainerState, raw, f"containers.{name}", name=str(name))
        for name, raw in containers.items()
    ]
    # version 1 -> 2 only added fields, whose defaults are right for an old file
    return WatchState(containers=tuple(sorted(out, key=lambda c: c.name)))


def _decode(cls: Any, raw: object, where: str, **given: Any) -> Any:
    """A dataclass from a JSON object, every known field's type checked."""
    if not isinstance(raw, dict):
        raise StateFormatError(f"{where}: expected an object")
    values = dict(given)
    for f in dataclasses.fields(cls):
        if f.name in given:
            continue
        if f.name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise StateFormatError(f"{where}.{f.name}: missing")
            continue
        values[f.name] = _CONVERT[str(f.type)](raw[f.name], f"{where}.{f.name}")
    return cls(**values)


def _str(v: object, where: str) -> str:
    if not isinstance(v, str):
        raise StateFormatError(f"{where}: expected a string, got {type(v).__name__}")
    return v


def _float(v: object, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise StateFormatError(f"{where}: expected a number, got {type(v).__name__}")
    try:
        value = float(v)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise StateFormatError(f"{where}: not a finite number")
    if not 0 <= value <= MAX_TIME:
        raise StateFormatError(f"{where}: not a time between 1970 and 9999 ({value:.0f})")
    return value


def _int(v: object, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**31:
        raise StateFormatError(f"{where}: expected a count, got {v!r:.40}")
    return v


def _opt_float(v: object, where: str) -> float | None:
    return None if v is None else _float(v, where)


def _list(item: Callable[[object, str], Any]) -> Callable[[object, str], tuple[Any, ...]]:
    def conv(v: object, where: str) -> tuple[Any, ...]:
        if not isinstance(v, list):
            raise StateFormatError(f"{where}: expected a list, got {type(v).__name__}")
        return tuple(item(x, f"{where}[{i}]") for i, x in enumerate(v))

    return conv


_CONVERT: dict[str, Callable[[object, str], Any]] = {
    "str": _str,
    "float": _float,
    "int": _int,
    "float | None": _opt_float,
    "tuple[str, ...]": _list(_str),
    "tuple[BadDigest, ...]": _list(lambda v, w: _decode(BadDigest, v, w)),
    "tuple[HistoryEntry, ...]": _list(lambda v, w: _decode(HistoryEntry, v, w)),
}


def state_folder(state_dir: str) -> None:
    """Create the state folder when missing; WatchError when others could write in it."""
    try:
        safe_folder(state_dir, "state folder")
    except UnsafeFolderError as e:
        raise WatchError(str(e)) from None


def open_state_lock(state_dir: str, lock_path: str) -> int:
    """The lock file's descriptor: in a safe folder, never through a symbolic link."""
    state_folder(state_dir)
    return open_lock(lock_path, 0o644)


class FileStateStore:
    """``STATE_DIR/state.json`` and ``STATE_DIR/lock``."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, STATE_FILE)
        self.lock_path = os.path.join(state_dir, LOCK_FILE)

    def _read(self) -> WatchState:
        """The parsed file; StateFormatError when it is not a valid state."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return WatchState()
        except OSError as e:
            if e.errno == errno.ELOOP:  # never read (or trust) a planted link
                raise StateFormatError("a symbolic link, not a file") from e
            raise WatchError(f"cannot read state file {self.path}: {e.strerror}") from e
        try:
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise StateFormatError("not a regular file")
                raw = f.read(MAX_STATE_BYTES + 1)
        except OSError as e:
            raise WatchError(f"cannot read state file {self.path}: {e.strerror}") from e
        if len(raw) > MAX_STATE_BYTES:
            raise StateFormatError(f"larger than {MAX_STATE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise StateFormatError(f"not UTF-8 ({e.reason} at byte {e.start})") from e
        return from_json(text)

    def load(self) -> WatchState:
        """The state for a pass: a corrupt file is moved aside, a newer one is refused."""
        try:
            return self._read()
        except StateTooNewError as e:
            raise StateTooNew(
                f"state file {self.path} was {e}; refusing to use or change "
                "it: upgrade psquadlet, or move the file away"
            ) from e
        except StateFormatError as e:
            # Only a foreign or hand-edited file gets here (writes are atomic): keep it for
            # inspection and start afresh rather than refusing to run every night.
            aside = f"{self.path}.corrupt-{int(time.time())}"
            try:
                os.replace(self.path, aside)
            except OSError as e2:
                raise WatchError(
                    f"state file {self.path} is unreadable ({e}) and cannot be "
                    f"moved aside: {e2.strerror or e2}"
                ) from e2
            return WatchState(
                notes=(
                    f"state file {self.path} was unreadable ({e}); "
                    f"moved to {aside}, starting with an empty state",
                )
            )

    def peek(self) -> tuple[WatchState, str]:
        """The state for read-only views (status): never raises, never moves the file.

        The second item is a note for the operator ("" when the file was fine or absent).
        """
        try:
            return self._read(), ""
        except (StateFormatError, WatchError) as e:
            return WatchState(), f"watcher state {self.path} is unusable: {e}"

    def save(self, state: WatchState) -> None:
        try:
            state_folder(self.state_dir)
            atomic_write(Path(self.path), to_json(state), 0o644)
        except OSError as e:
            raise WatchError(f"cannot write state file {self.path}: {e.strerror or e}") from e

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        try:
            fd = open_state_lock(self.state_dir, self.lock_path)
        except OSError as e:
            raise WatchError(f"cannot open lock file {self.lock_path}: {e.strerror or e}") from e
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
