"""The notifier: an ``EventSink`` that queues, and a ``flush`` that sends under a deadline.

``emit`` only renders the message and appends it to each interested channel's outbox (a
local file write): it returns at once and never raises. ``flush`` sends every channel's
pending messages through the Apprise adapter (``send``), one short process per channel, all
channels at once, and kills whatever is still running at the deadline (``timeout`` seconds):
a dead SMTP server or a hanging webhook delays the caller by at most that. What was not sent
stays queued and is retried by a later flush after a back-off (1 min, doubling, at most 1 h).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from psquadlet.errors import PsquadletError
from psquadlet.notifications.message import CLEARS, Message, quiet_key, render
from psquadlet.notifications.outbox import BACKOFF_MAX, Outbox, Pending
from psquadlet.notifications.redact import Redactor
from psquadlet.notifications.settings import Channel, NotificationSettings
from psquadlet.watch.events import Event
from psquadlet.watch.schedule import not_future

OUTBOX_FOLDER = "notifications"


class Log(Protocol):
    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...


class _Quiet:
    def info(self, msg: str) -> None:
        return None

    def warning(self, msg: str) -> None:
        return None


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


@dataclass(frozen=True)
class ChannelResult:
    """What one flush did for one channel; ``error`` is already redacted."""

    channel: str
    sent: int = 0
    pending: int = 0
    error: str = ""
    note: str = ""  # why nothing was tried ("nothing queued", "retry in 240 s", ...)

    @property
    def ok(self) -> bool:
        return not self.error

    def text(self) -> str:
        if self.error:
            return f"{self.channel}: failed ({self.error}); {self.pending} message(s) kept"
        if self.note:
            return f"{self.channel}: {self.note}"
        return f"{self.channel}: sent {self.sent} message(s)"


@dataclass
class _Job:
    channel: Channel
    proc: subprocess.Popen[bytes] | None
    error: str = ""
    ids: frozenset[str] = frozenset()


class Notifier:
    """Queue events per channel (``emit``) and deliver them (``flush``)."""

    def __init__(
        self,
        settings: NotificationSettings,
        state_dir: str | Path,
        urls: Mapping[str, str],
        *,
        log: Log | None = None,
        clock: Callable[[], float] = time.time,
        python: str = sys.executable,
    ) -> None:
        self.settings = settings
        self.folder = Path(state_dir) / OUTBOX_FOLDER
        self.urls = dict(urls)
        self.redact = Redactor(self.urls.values())
        self.log: Log = log or _Quiet()
        self.clock = clock
        self.python = python
        self.host = settings.hostname or socket.gethostname()
        self.unqueued: dict[str, str] = {}
        """Channel -> why the last message could not be queued (``flush`` reports it)."""

    def outbox(self, channel: Channel) -> Outbox:
        return Outbox(self.folder, channel.name, self.settings.outbox_limit)

    # -------------------------------------------------------------------------- queueing

    def emit(self, event: Event) -> None:
        """Queue ``event`` for every channel that wants it. Never raises."""
        try:
            message = render(event, self.host)
            clears = tuple(quiet_key(k, event.container) for k in CLEARS.get(event.kind, ()))
            for channel in self.settings.channels:
                if channel.wants(event):
                    self._add(channel, message, clears)
        except Exception as exc:  # a notification never breaks a pass
            self.log.warning(self.redact(f"notifications: cannot queue {event.kind.value}: {exc}"))

    def _add(self, channel: Channel, message: Message, clears: tuple[str, ...]) -> None:
        try:
            added = self.outbox(channel).add(message, self.settings.quiet_period, clears)
        except (OSError, PsquadletError) as exc:  # a full disk, an unsafe folder
            error = self.redact(f"cannot queue {message.kind}: {_why(exc)}")
            self.unqueued[channel.name] = error
            self.log.warning(f"notifications: channel {channel.name}: {error}")
            return
        if added:
            self.log.info(f"notifications: queued {message.kind} for channel {channel.name}")
        else:
            self.log.info(
                f"notifications: {message.kind} for channel {channel.name} held back (quiet period)"
            )

    # -------------------------------------------------------------------------- sending

    def flush(self, *, force: bool = False, only: Iterable[str] = ()) -> list[ChannelResult]:
        """Send what is queued; ``force`` ignores the back-off. Never raises. Blocks at most
        twice ``timeout`` seconds: while another process (a unit's hook, a pass) is sending a
        channel, this one waits for it, up to ``timeout``, and then sends what is left (a
        message queued meanwhile is not left behind until the next pass); then all channels
        are sent in parallel within ``timeout``."""
        results = self._flush(force, set(only))
        # A message that never reached the queue is a failure, never "nothing queued".
        for i, result in enumerate(results):
            lost = self.unqueued.pop(result.channel, "")
            if lost and not result.error:
                results[i] = ChannelResult(result.channel, result.sent, result.pending, lost)
        return results

    def _flush(self, force: bool, wanted: set[str]) -> list[ChannelResult]:
        channels = [c for c in self.settings.channels if not wanted or c.name in wanted]
        now = self.clock()
        results: list[ChannelResult] = []
        waiting_ends = time.monotonic() + self.settings.timeout
        with contextlib.ExitStack() as stack:
            jobs: list[tuple[_Job, list[Pending]]] = []
            for channel in channels:
                outbox = self.outbox(channel)
                try:
                    box = outbox.read()
                    if box.pending:
                        # Another flush may be sending this channel: wait for it, then read
                        # again under the send lock (it may have sent some or all of it).
                        wait = max(0.0, waiting_ends - time.monotonic())
                        if not stack.enter_context(outbox.sending(wait)):
                            results.append(
                                ChannelResult(
                                    channel.name,
                                    pending=len(box.pending),
                                    note="another flush is sending",
                                )
                            )
                            continue
                        box = outbox.read()
                    if not box.pending:
                        results.append(ChannelResult(channel.name, note="nothing queued"))
                        continue
                    # a retry time past the longest back-off was set by a clock then ahead
                    next_try = not_future(box.next_try, now, BACKOFF_MAX)
                    if not force and now < next_try:
                        wait = int(next_try - now)
                        results.append(
                            ChannelResult(
                                channel.name,
                                pending=len(box.pending),
                                note=f"{len(box.pending)} queued, next try in {wait} s",
                            )
                        )
                        continue
                except (OSError, PsquadletError) as exc:
                    results.append(ChannelResult(channel.name, error=f"outbox: {_why(exc)}"))
                    continue
                batch = list(box.pending)
                if box.dropped:
                    first = batch[0]
                    note = f"({box.dropped} older messages were dropped: the outbox was full.)"
                    batch[0] = Pending(
                        first.id,
                        first.title,
                        f"{note}\n\n{first.body}",
                        first.kind,
                        first.key,
                        first.time,
                    )
                jobs.append((self._start(channel, batch), batch))
            deadline = time.monotonic() + self.settings.timeout
            for job, batch in jobs:
                sent, error = self._finish(job, deadline)
                results.append(self._record(job.channel, sent, error, len(batch)))
        return results

    def send_now(self, channel: Channel, messages: list[Pending]) -> ChannelResult:
        """Send without the outbox (``notify --test``): report, keep nothing."""
        job = self._start(channel, messages)
        sent, error = self._finish(job, time.monotonic() + self.settings.timeout)
        pending = len(messages) - len(sent)
        return ChannelResult(channel.name, sent=len(sent), pending=pending, error=error)

    def _start(self, channel: Channel, messages: list[Pending]) -> _Job:
        url = self.urls.get(channel.name, "")
        if not url:
            return _Job(channel, None, "no URL for this channel")
        request = {
            "url": url,
            "messages": [{"id": m.id, "title": m.title, "body": m.body} for m in messages],
        }
        try:
            proc = subprocess.Popen(
                [self.python, "-m", "psquadlet.notifications.send"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,  # a traceback, if the sender itself breaks
                start_new_session=True,  # killed as a group at the deadline
            )
            assert proc.stdin is not None
            try:
                with proc.stdin:
                    proc.stdin.write(json.dumps(request).encode())
            except BrokenPipeError:
                pass  # the sender died before reading: its exit status and stderr say why
        except OSError as exc:
            return _Job(channel, None, f"cannot start the sender: {exc}")
        return _Job(channel, proc, ids=frozenset(m.id for m in messages))

    def _finish(self, job: _Job, deadline: float) -> tuple[set[str], str]:
        if job.proc is None:
            return set(), job.error
        proc = job.proc
        error = ""
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            error = f"no answer within {self.settings.timeout} s"
        assert proc.stdout is not None
        assert proc.stderr is not None
        with proc.stdout, proc.stderr:
            output = proc.stdout.read().decode(errors="replace")
            crash = proc.stderr.read().decode(errors="replace").strip().splitlines()
        sent: set[str] = set()
        for line in output.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if "sent" in item:
                sent.add(str(item["sent"]))
            elif "error" in item and not error:
                error = str(item["error"])
        if sent >= job.ids:
            error = ""  # everything went out; only the sender's exit was slow
        elif not error and proc.returncode != 0:
            error = f"the sender exited with status {proc.returncode}"
            if crash:
                error += f": {crash[-1]}"
        return sent, self.redact(error)

    def _record(self, channel: Channel, sent: set[str], error: str, tried: int) -> ChannelResult:
        outbox = self.outbox(channel)
        now = self.clock()
        try:
            with outbox.edit() as box:
                box.sent(sent, now)
                if error:
                    box.failed(now, error)
                else:
                    box.attempts, box.next_try, box.last_error = 0, 0.0, ""
                pending = len(box.pending)
        except (OSError, PsquadletError) as exc:
            return ChannelResult(channel.name, sent=len(sent), error=f"outbox: {_why(exc)}")
        if error:
            self.log.warning(
                f"notifications: channel {channel.name}: {error}; "
                f"{pending} message(s) kept for a later try"
            )
        elif sent:
            self.log.info(f"notifications: channel {channel.name}: sent {len(sent)} of {tried}")
        return ChannelResult(channel.name, sent=len(sent), pending=pending, error=error)
