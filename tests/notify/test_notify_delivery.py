"""Delivery with Apprise for real: loopback SMTP (aiosmtpd) and a JSON webhook (http.server).

Faults: a dead SMTP server and a hanging webhook delay the caller by at most the channel's
timeout; the outbox keeps the message and a later flush delivers it. Successful deliveries get
a generous timeout (the sender is a fresh Python importing Apprise, slow on a loaded CI host);
the fault cases a short one, which is what they measure.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from psquadlet.notifications.deliver import Notifier
from psquadlet.notifications.outbox import BACKOFF_FIRST
from psquadlet.notifications.settings import Channel, NotificationSettings
from psquadlet.watch.events import Event, EventKind
from tests.notify.debs import distribution_apprise
from tests.notify.receivers import SmtpSink, Webhook

pytest.importorskip("apprise")

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
SECRET = "s3cret-Pa55-xyz"


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        self.lines.append(msg)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _event(kind: EventKind, at: float, **kw: str) -> Event:
    return Event(
        kind,
        "perfsonar-testpoint",
        "perfsonar-testpoint.service",
        "ghcr.io/perfsonar/testpoint:systemd",
        at,
        **kw,
    )


def _notifier(
    tmp_path: Path,
    urls: dict[str, str],
    clock: Clock,
    log: Lines | None = None,
    timeout: int = 20,
    **kw: int,
) -> Notifier:
    settings = NotificationSettings(
        channels=tuple(Channel(name) for name in sorted(urls)),
        hostname="lab1",
        timeout=timeout,
        **kw,
    )
    return Notifier(settings, tmp_path / "state", urls, log=log, clock=clock)


def test_email_and_webhook_receive_the_message(
    tmp_path: Path, smtp: SmtpSink, webhook: Webhook
) -> None:
    clock = Clock()
    n = _notifier(tmp_path, {"mail": smtp.url(), "hook": webhook.url()}, clock)
    n.emit(
        _event(
            EventKind.ROLLED_BACK,
            clock.now,
            old_digest=OLD,
            new_digest=NEW,
            old_version="5.1.0",
            new_version="5.2.0",
            detail="health check: exit 1",
        )
    )
    results = {r.channel: r for r in n.flush()}
    assert results["mail"].sent == 1, results
    assert results["hook"].sent == 1, results
    (mail,) = smtp.messages
    assert "Subject: [lab1] perfsonar-testpoint.service: rolled back" in mail
    (hook,) = webhook.received
    assert hook["title"] == "[lab1] perfsonar-testpoint.service: rolled back"
    body = hook["message"]
    for fact in (
        "Host: lab1",
        "Unit: perfsonar-testpoint.service",
        f"Before: {OLD} (version 5.1.0)",
        f"After: {NEW} (version 5.2.0)",
        "health check: exit 1",
    ):
        assert fact in body
    assert {r.channel: r.text() for r in n.flush()} == {
        "hook": "hook: nothing queued",
        "mail": "mail: nothing queued",
    }


def test_smtp_down_is_fast_and_delivered_when_back(tmp_path: Path) -> None:
    smtp = SmtpSink()  # not started: connection refused
    clock, log = Clock(), Lines()
    n = _notifier(tmp_path, {"mail": smtp.url(SECRET)}, clock, log, timeout=3)
    started = time.monotonic()
    n.emit(_event(EventKind.UPGRADED, clock.now, old_digest=OLD, new_digest=NEW))
    (result,) = n.flush()
    assert time.monotonic() - started < 5
    assert not result.ok
    assert result.pending == 1
    clock.now += 10
    (waiting,) = n.flush()
    assert "next try in" in waiting.note
    smtp.start()
    try:
        clock.now += BACKOFF_FIRST
        later = _notifier(tmp_path, {"mail": smtp.url(SECRET)}, clock, log)  # the next pass
        (again,) = later.flush()
        assert again.ok, again
        assert again.sent == 1
        assert len(smtp.messages) == 1
        assert "upgraded" in smtp.messages[0]
    finally:
        smtp.stop()
    assert all(SECRET not in line for line in log.lines)
    box = (tmp_path / "state/notifications/mail.json").read_text()
    assert SECRET not in box


def test_hanging_webhook_is_cut_at_the_timeout_then_delivered(
    tmp_path: Path, webhook: Webhook
) -> None:
    clock = Clock()
    n = _notifier(tmp_path, {"hook": webhook.url()}, clock, timeout=2)
    webhook.hang.set()
    n.emit(_event(EventKind.CHECK_FAILING, clock.now, detail="registry: connection refused"))
    started = time.monotonic()
    (result,) = n.flush()
    elapsed = time.monotonic() - started
    assert elapsed < 4, elapsed
    assert result.error == "no answer within 2 s"
    assert result.pending == 1
    webhook.hang.clear()
    webhook.release.set()
    clock.now += BACKOFF_FIRST
    (again,) = _notifier(tmp_path, {"hook": webhook.url()}, clock).flush()  # the next pass
    assert again.sent == 1, again
    assert webhook.received[-1]["title"].endswith("the update check is failing")


def test_quiet_period_one_message_a_day(tmp_path: Path, webhook: Webhook) -> None:
    clock = Clock()
    n = _notifier(tmp_path, {"hook": webhook.url()}, clock)
    for _ in range(5):  # five failing passes in a row, an hour apart
        n.emit(_event(EventKind.CHECK_FAILING, clock.now))
        n.flush()
        clock.now += 3600
    assert len(webhook.received) == 1
    clock.now += 86400
    n.emit(_event(EventKind.CHECK_FAILING, clock.now))
    n.flush()
    assert len(webhook.received) == 2
    assert "4 repeats were held back" in webhook.received[1]["message"]
    # Recovery is news, and so is the next failure after it.
    n.emit(_event(EventKind.CHECK_RECOVERED, clock.now))
    n.emit(_event(EventKind.CHECK_FAILING, clock.now + 60))
    n.flush()
    assert [m["title"].split(": ", 1)[1] for m in webhook.received[2:]] == [
        "the update check works again",
        "the update check is failing",
    ]


def test_outbox_is_bounded_oldest_dropped_and_counted(tmp_path: Path, webhook: Webhook) -> None:
    clock = Clock()
    n = _notifier(tmp_path, {"hook": webhook.url()}, clock, outbox_limit=3)
    for i in range(5):
        n.emit(_event(EventKind.UPGRADED, clock.now + i, new_digest=f"sha256:{i:064d}"))
    (result,) = n.flush()
    assert result.sent == 3
    assert "2 older messages were dropped" in webhook.received[0]["message"]
    assert f"sha256:{2:064d}" in webhook.received[0]["message"]


def test_channel_filters(tmp_path: Path, webhook: Webhook) -> None:
    clock = Clock()
    settings = NotificationSettings(
        channels=(Channel("hook", events=(EventKind.ROLLED_BACK,), containers=("other",)),),
        hostname="h",
    )
    n = Notifier(settings, tmp_path, {"hook": webhook.url()}, clock=clock)
    n.emit(_event(EventKind.ROLLED_BACK, clock.now))  # another container
    n.emit(Event(EventKind.UPGRADED, "other", "other.service", "x", clock.now))  # not listed
    n.emit(Event(EventKind.ROLLED_BACK, "other", "other.service", "x", clock.now))
    n.flush()
    assert [m["title"] for m in webhook.received] == ["[h] other.service: rolled back"]


def test_emit_never_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = Lines()
    settings = NotificationSettings(channels=(Channel("hook"),))
    n = Notifier(settings, blocker, {"hook": f"json://u:{SECRET}@127.0.0.1:9/"}, log=log)
    n.emit(_event(EventKind.UPGRADED, time.time()))  # the state folder is a file
    assert log.lines
    assert "cannot queue upgraded" in log.lines[0]
    assert n.flush()[0].error.startswith("outbox")


def test_the_distributions_apprise_delivers(
    tmp_path: Path, smtp: SmtpSink, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's own Apprise (1.2.0 in Debian 12, the oldest supported) speaks the same API."""
    folder = distribution_apprise()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), *sys.path]))
    probe = subprocess.run(
        [sys.executable, "-c", "import apprise; print(apprise.__file__, apprise.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.startswith(str(folder)), probe.stdout
    clock = Clock()
    n = _notifier(tmp_path, {"mail": smtp.url(), "hook": webhook.url()}, clock)
    n.emit(_event(EventKind.UPDATE_AVAILABLE, clock.now, old_digest=OLD, new_digest=NEW))
    assert all(r.sent == 1 for r in n.flush())
    assert "update available" in smtp.messages[0]
    assert webhook.received[0]["title"].endswith("update available")


def test_sender_errors_are_redacted(tmp_path: Path) -> None:
    """Whatever the sender reports (Apprise may quote a URL) is stripped of the URL's secrets."""
    stand_in = tmp_path / "sender"
    stand_in.write_text(
        "#!/bin/sh\n"
        'url=$(sed -n \'s/.*"url": "\\([^"]*\\)".*/\\1/p\')\n'
        'printf \'{"error": "login refused for %s (user psq, password %s)"}\\n\' '
        f'"$url" "{SECRET}"\n'
    )
    stand_in.chmod(0o755)
    log, clock = Lines(), Clock()
    settings = NotificationSettings(channels=(Channel("mail"),), timeout=20)
    url = f"mailtos://psq:{SECRET}@smtp.example.org?to=ops@example.org"
    n = Notifier(settings, tmp_path, {"mail": url}, log=log, clock=clock, python=str(stand_in))
    n.emit(_event(EventKind.ROLLED_BACK, clock.now))
    (result,) = n.flush()
    assert result.error == "login refused for mailtos://*** (user psq, password ***)"
    assert all(SECRET not in line for line in log.lines)
    assert SECRET not in (tmp_path / "notifications/mail.json").read_text()


def test_without_apprise_the_reason_is_plain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's Python without Apprise: the channel fails with what to install, and keeps it."""
    python = "/usr/bin/python3"
    if (
        not os.path.exists(python)
        or subprocess.run(
            [python, "-c", "import apprise"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        pytest.skip("needs a Python without Apprise")
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", root)
    settings = NotificationSettings(channels=(Channel("hook"),), timeout=20)
    n = Notifier(settings, tmp_path, {"hook": "json://127.0.0.1:9/"}, python=python)
    n.emit(_event(EventKind.UPGRADED, time.time()))
    (result,) = n.flush()
    assert result.error.startswith("Apprise is not installed (pip install 'psquadlet[notify]'")
    assert result.pending == 1


def test_a_broken_sender_is_reported(tmp_path: Path) -> None:
    stand_in = tmp_path / "sender"
    stand_in.write_text(
        "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
        "echo \"ModuleNotFoundError: No module named 'psquadlet'\" >&2\nexit 1\n"
    )
    stand_in.chmod(0o755)
    settings = NotificationSettings(channels=(Channel("hook"),), timeout=20)
    n = Notifier(settings, tmp_path, {"hook": "json://127.0.0.1:9/"}, python=str(stand_in))
    n.emit(_event(EventKind.UPGRADED, time.time()))
    (result,) = n.flush()
    assert result.error == (
        "the sender exited with status 1: ModuleNotFoundError: No module named 'psquadlet'"
    )


def _hold_send_lock(n: Notifier, channel: str) -> int:
    """Hold the channel's send lock as another process's flush would (flock on an open file
    description of our own conflicts with the notifier's)."""
    folder = n.outbox(Channel(channel)).folder
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / f"{channel}.send.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_message_queued_while_another_flush_sends_is_sent_once_that_one_ends(
    tmp_path: Path, webhook: Webhook
) -> None:
    """A hook's flush is sending while the pass queues `rolled-back`: the pass waits for it
    and sends the message then, instead of leaving it queued until the next day's pass."""
    clock = Clock()
    n = _notifier(tmp_path, {"hook": webhook.url()}, clock, timeout=60)
    n.emit(_event(EventKind.ROLLED_BACK, clock.now, old_digest=OLD, new_digest=NEW))
    fd = _hold_send_lock(n, "hook")
    release = threading.Timer(1.0, os.close, (fd,))
    release.start()
    try:
        (result,) = n.flush()
    finally:
        release.join()
    assert result.sent == 1, result
    assert [m["title"] for m in webhook.received] == [
        "[lab1] perfsonar-testpoint.service: rolled back"
    ]


def test_a_flush_that_never_ends_elsewhere_is_waited_for_at_most_the_timeout(
    tmp_path: Path, webhook: Webhook
) -> None:
    clock = Clock()
    n = _notifier(tmp_path, {"hook": webhook.url()}, clock, timeout=2)
    n.emit(_event(EventKind.ROLLED_BACK, clock.now, old_digest=OLD, new_digest=NEW))
    fd = _hold_send_lock(n, "hook")
    try:
        started = time.monotonic()
        (result,) = n.flush()
        waited = time.monotonic() - started
    finally:
        os.close(fd)
    assert result.note == "another flush is sending", result
    assert result.pending == 1
    assert 2 <= waited < 30, waited  # bounded by the timeout (generous: a busy CI host)
    assert webhook.received == []
    # the message is still queued, and goes out next time (a sending timeout for a busy host)
    (later,) = _notifier(tmp_path, {"hook": webhook.url()}, clock, timeout=60).flush()
    assert later.sent == 1, later
