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
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from psquadlet.fsutil import atomic_write
from psquadlet.notifications.message import Message
from psquadlet.watch.schedule import not_future

BACKOFF_FIRST = 60  # seconds before the first retry; doubles per failure
BACKOFF_MAX = 3600


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
        raw: dict[str, Any] = json.loads(text)
        pending = [Pending(**p) for p in raw.get("pending", [])]
        return cls(
            pending=pending,
            dropped=int(raw.get("dropped", 0)),
            attempts=int(raw.get("attempts", 0)),
            next_try=float(raw.get("next_try", 0.0)),
            last_error=str(raw.get("last_error", "")),
            last_sent=float(raw.get("last_sent", 0.0)),
            recent={str(k): float(v) for k, v in raw.get("recent", {}).items()},
            held={str(k): int(v) for k, v in raw.get("held", {}).items()},
        )

    def to_json(self) -> str:
        return json.dumps({"version": 1, **asdict(self)}, indent=1, sort_keys=True) + "\n"

    def failed(self, now: float, error: str) -> None:
        self.attempts += 1
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.attempts - 1))
        self.next_try = now + delay
        self.last_error = error

    def sent(self, ids: set[str], now: float) -> None:
        self.pending = [p for p in self.pending if p.id not in ids]
        if ids:
            self.last_sent = now
            self.dropped = 0


class Outbox:
    def __init__(self, folder: Path, channel: str, limit: int) -> None:
        self.folder = folder
        self.channel = channel
        self.limit = limit
        self.path = folder / f"{channel}.json"

    @contextlib.contextmanager
    def _flock(self, suffix: str, blocking: bool) -> Iterator[bool]:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.folder / f"{self.channel}{suffix}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                yield False
                return
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
        try:
            return Box.from_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Box()
        except (ValueError, TypeError, KeyError):
            # A foreign or damaged file: start afresh rather than never notifying again.
            return Box(last_error="the outbox file was unreadable and was reset")

    def sending(self) -> contextlib.AbstractContextManager[bool]:
        """True when this process may send now (no other flush is sending this channel)."""
        return self._flock(".send.lock", blocking=False)

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
