"""A small persistent outbox per channel: ``STATE_DIR/notifications/CHANNEL.json``.

Apprise has no retry queue: a message that could not be sent stays here until a later flush
delivers it. Each change is a read-modify-write under ``CHANNEL.lock`` (held for the file I/O
only, never while sending) and lands atomically, so a watcher pass and a ``notify --event``
hook run by systemd can both queue at the same time. ``CHANNEL.send.lock`` is held while a
flush sends, so that two flushes never send the same message twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from psquadlet.fsutil import atomic_write, open_lock, safe_folder
from psquadlet.notifications.message import Message
from psquadlet.watch.schedule import not_future

BACKOFF_FIRST = 60  # seconds before the first retry; doubles per failure
BACKOFF_MAX = 3600
MAX_OUTBOX_BYTES = 16 * 1024 * 1024  # a full box of the largest limit is far smaller


@dataclass
class Pending:
    id: str
    title: str
    body: str
    kind: str
    key: str
    time: float


@dataclass
class Box:
    """The content of one channel's outbox file."""

    pending: list[Pending] = field(default_factory=list)
    dropped: int = 0  # oldest messages dropped because the outbox was full
    attempts: int = 0  # failed flushes in a row
    next_try: float = 0.0
    last_error: str = ""
    last_sent: float = 0.0
    recent: dict[str, float] = field(default_factory=dict)  # quiet key -> last queued
    held: dict[str, int] = field(default_factory=dict)  # quiet key -> repeats held back

    @classmethod
    def from_json(cls, text: str) -> Box:
        """Parse an outbox file; ValueError for anything that is not one (any JSON shape)."""
        try:
            raw = json.loads(text)
        except RecursionError:
            raise ValueError("nested too deeply") from None
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        pending = raw.get("pending", [])
        if not isinstance(pending, list):
            raise ValueError("pending: not a list")
        return cls(
            pending=[_pending(p) for p in pending],
            dropped=_count(raw.get("dropped", 0)),
            attempts=_count(raw.get("attempts", 0)),
            next_try=_time(raw.get("next_try", 0.0)),
            last_error=_text(raw.get("last_error", "")),
            last_sent=_time(raw.get("last_sent", 0.0)),
            recent={_text(k): _time(v) for k, v in _object(raw.get("recent", {})).items()},
            held={_text(k): _count(v) for k, v in _object(raw.get("held", {})).items()},
        )

    def to_json(self) -> str:
        return json.dumps({"version": 1, **asdict(self)}, indent=1, sort_keys=True) + "\n"

    def failed(self, now: float, error: str) -> None:
        self.attempts += 1
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(self.attempts - 1, 16))
        self.next_try = now + delay
        self.last_error = error

    def sent(self, ids: set[str], now: float) -> None:
        self.pending = [p for p in self.pending if p.id not in ids]
        if ids:
            self.last_sent = now
            self.dropped = 0


def _object(v: object) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError(f"expected an object, got {type(v).__name__}")
    return v


def _text(v: object) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {type(v).__name__}")
    return v


def _count(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**31:
        raise ValueError("expected a count")
    return v


def _time(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("expected a number")
    try:
        value = float(v)
    except OverflowError:
        raise ValueError("not a finite number") from None
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _pending(raw: object) -> Pending:
    item = _object(raw)
    return Pending(
        _text(item.get("id")),
        _text(item.get("title")),
        _text(item.get("body")),
        _text(item.get("kind")),
        _text(item.get("key")),
        _time(item.get("time")),
    )


class Outbox:
    def __init__(self, folder: Path, channel: str, limit: int) -> None:
        self.folder = folder
        self.channel = channel
        self.limit = limit
        self.path = folder / f"{channel}.json"

    @contextlib.contextmanager
    def _flock(self, suffix: str, blocking: bool, wait: float = 0.0) -> Iterator[bool]:
        """The lock ``suffix``: taken (True), or False when another process holds it and
        ``blocking`` is off, after polling for at most ``wait`` seconds."""
        safe_folder(self.folder, "outbox folder", mode=0o700)
        fd = open_lock(self.folder / f"{self.channel}{suffix}", 0o600)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.1)
            yield True
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def edit(self) -> Iterator[Box]:
        """The box, locked; written back (atomically, 0600) when the block ends normally."""
        with self._flock(".lock", blocking=True):
            box = self.read()
            yield box
            atomic_write(self.path, box.to_json(), mode=0o600)

    def read(self) -> Box:
        """The box (empty when there is none). A damaged file, whatever its shape, is moved
        aside as ``CHANNEL.json.corrupt-TIME`` so that the channel keeps working; OSError
        when the file cannot be read or moved."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return Box()
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            return self._aside("a symbolic link")
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return self._aside("not a regular file")
            raw = handle.read(MAX_OUTBOX_BYTES + 1)
        if len(raw) > MAX_OUTBOX_BYTES:
            return self._aside(f"larger than {MAX_OUTBOX_BYTES} bytes")
        try:
            return Box.from_json(raw.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError and shapes
            return self._aside(str(exc))

    def _aside(self, why: str) -> Box:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        with contextlib.suppress(FileNotFoundError):  # another reader moved it first
            os.replace(self.path, aside)
        return Box(last_error=f"the outbox file was unreadable ({why:.200}); moved to {aside}")

    def sending(self, wait: float = 0.0) -> contextlib.AbstractContextManager[bool]:
        """True when this process may send now: no other flush is sending this channel, or it
        finished within ``wait`` seconds."""
        return self._flock(".send.lock", blocking=False, wait=wait)

    def add(self, message: Message, quiet_period: int, clears: tuple[str, ...] = ()) -> bool:
        """Queue a message; False when it repeats one queued within the quiet period."""
        now = message.time
        with self.edit() as box:
            # a repeat recorded "in the future" (the clock was ahead then) was queued now
            recent = {k: not_future(t, now) for k, t in box.recent.items()}
            box.recent = {k: t for k, t in recent.items() if now - t < quiet_period}
            for key in clears:
                box.recent.pop(key, None)
                box.held.pop(key, None)
            if message.key and message.key in box.recent:
                box.held[message.key] = box.held.get(message.key, 0) + 1
                return False
            body = message.body
            held = box.held.pop(message.key, 0) if message.key else 0
            if held:
                body += f"\n\n({held} repeats were held back during the quiet period.)"
            if message.key and quiet_period > 0:
                box.recent[message.key] = now
            box.pending.append(
                Pending(os.urandom(16).hex(), message.title, body, message.kind, message.key, now)
            )
            overflow = len(box.pending) - self.limit
            if overflow > 0:
                del box.pending[:overflow]
                box.dropped += overflow
        return True
