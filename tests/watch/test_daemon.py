"""sd_notify, journald-aware logging and the daemon loop.

The notify socket is a real AF_UNIX datagram socket, as systemd provides it; the daemon runs
in a thread over the fake adapters with a short interval schedule.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Callable

import pytest
from watchfakes import IMAGE, OLD, world

from psquadlet.imageref import parse
from psquadlet.watch import core
from psquadlet.watch.daemon import Daemon
from psquadlet.watch.interfaces import SystemClock
from psquadlet.watch.log import Logger, under_journald
from psquadlet.watch.notify import Notifier, watchdog_interval
from psquadlet.watch.schedule import Schedule
from psquadlet.watch.targets import Target


class NotifySocket:
    """Reads continuously, like systemd does."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.path = str(path)
        self.messages: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, TimeoutError):
                continue

    def drain(self) -> list[str]:
        time.sleep(0.3)
        return list(self.messages)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify")
    yield s
    s.close()


def test_notifier_sends_ready_status_watchdog(notify_socket: NotifySocket) -> None:
    n = Notifier(notify_socket.path)
    assert n.ready("watching pt")
    assert n.status("idle; next check\nat 03:12")
    assert n.watchdog()
    assert n.extend_timeout(90)
    assert n.extend_timeout(0.0000001)  # never 0: that would mean nothing to systemd
    assert notify_socket.drain() == [
        "READY=1\nSTATUS=watching pt",
        "STATUS=idle; next check at 03:12",
        "WATCHDOG=1",
        "EXTEND_TIMEOUT_USEC=90000000",
        "EXTEND_TIMEOUT_USEC=1",
    ]


def test_notifier_is_silent_outside_systemd() -> None:
    assert not Notifier("").ready()


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "300000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 150.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval() is None


def test_log_priorities_under_journald() -> None:
    out = io.StringIO()
    log = Logger(out, journal=True, tty=False)
    log.error("pull failed")
    log.warning("not running")
    log.info("up to date")
    log.progress("Copying blob")
    assert out.getvalue().splitlines() == [
        "<3>pull failed",
        "<4>not running",
        "<6>up to date",
        "<6>Copying blob",
    ]


def test_log_on_a_terminal_overwrites_progress() -> None:
    out = io.StringIO()
    log = Logger(out, journal=False, tty=True)
    log.progress("Copying blob 1")
    log.progress("Copying blob 2")
    log.info("upgraded")
    text = out.getvalue()
    assert text.startswith("\r\x1b[KCopying blob 1\r\x1b[KCopying blob 2")
    assert text.endswith("\r\x1b[Kupgraded\n")
    assert "<6>" not in text


def test_journal_stream_detection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(tmp_path / "f", "w") as f:
        st = os.fstat(f.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert under_journald(f)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not under_journald(f)


def test_daemon_ready_passes_on_schedule_status_and_watchdog(notify_socket: NotifySocket) -> None:
    w = world()
    w.registry.digests[IMAGE] = OLD
    w.deps.clock = SystemClock()
    t = Target(
        name="perfsonar-testpoint",
        unit="perfsonar-testpoint.service",
        container="pt",
        image=parse(IMAGE),
        schedule=Schedule(daily=None, interval=1),
    )
    off = Target(
        name="other", unit="other.service", container="o", image=parse(IMAGE), policy="off"
    )
    reports: list[core.PassReport] = []
    stop = threading.Event()
    daemon = Daemon.in_process(
        [t, off],
        w.deps,
        Notifier(notify_socket.path),
        machine_id="x",
        watchdog=0.3,
        stop=stop,
        on_pass=reports.append,
    )
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(reports) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert len(reports) >= 2
    assert all(r.outcomes[0].action == core.UP_TO_DATE for r in reports)
    msgs = notify_socket.drain()
    msgs = msgs[msgs.index("READY=1\nSTATUS=watching perfsonar-testpoint") :]
    assert any(
        m.startswith("STATUS=idle; next check ") and "(perfsonar-testpoint)" in m for m in msgs
    )
    assert "WATCHDOG=1" in msgs
    assert msgs[-1] == "STOPPING=1"
    # passes were recorded as runs: a restart would not re-run them at once
    assert w.store.state.get("perfsonar-testpoint").last_run is not None
    assert w.registry.heads.count(IMAGE) == len(reports)  # 'off' target never checked


def test_daemon_without_watchdog_sleeps_until_the_slot(notify_socket: NotifySocket) -> None:
    w = world()
    w.deps.clock = SystemClock()
    t = Target(
        name="perfsonar-testpoint",
        unit="perfsonar-testpoint.service",
        container="pt",
        image=parse(IMAGE),
        schedule=Schedule(daily="03:00", randomized_delay=3600),
    )
    stop = threading.Event()
    waits: list[float] = []
    daemon = Daemon.in_process(
        [t], w.deps, Notifier(notify_socket.path), machine_id="x", watchdog=None, stop=stop
    )
    real_wait = stop.wait

    def spy(timeout: float | None = None) -> bool:
        waits.append(timeout or 0.0)
        stop.set()
        return real_wait(0)

    stop.wait = spy  # type: ignore[method-assign]
    daemon.run()
    assert len(waits) == 1
    assert waits[0] > 60  # one long sleep to the next slot, no periodic wake-ups
    assert w.registry.heads == []  # first start: baseline only, no check until the slot


def test_daemon_recovers_an_interrupted_upgrade_at_start(notify_socket: NotifySocket) -> None:
    import dataclasses

    from psquadlet.watch.state import PHASE_PULLING

    w = world()
    w.units.state["perfsonar-testpoint.service"] = "inactive"
    cs = dataclasses.replace(
        w.store.state.get("perfsonar-testpoint"),
        phase=PHASE_PULLING,
        phase_digest="sha256:" + "b" * 64,
        previous_image_id="old0",
    )
    w.store.state = w.store.state.put(cs)
    t = Target(
        name="perfsonar-testpoint",
        unit="perfsonar-testpoint.service",
        container="pt",
        image=parse(IMAGE),
    )
    stop = threading.Event()
    stop.set()
    Daemon.in_process(
        [t], w.deps, Notifier(notify_socket.path), machine_id="x", watchdog=None, stop=stop
    ).run()
    assert w.units.state["perfsonar-testpoint.service"] == "active"
    assert w.store.state.get("perfsonar-testpoint").phase == ""


class SlowRecovery:
    """A runner whose start-up recovery takes a while, like a restart plus a health gate."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def recover(self, known: Sequence[Target], status: Callable[[str], None]) -> None:
        status("recovering perfsonar-testpoint.service")
        time.sleep(self.seconds)

    def run_pass(
        self, due: Sequence[Target], known: Sequence[Target], status: Callable[[str], None]
    ) -> core.PassReport:
        raise AssertionError("no pass is due")


@pytest.mark.parametrize("watchdog", [None, 0.05])
def test_daemon_extends_the_start_timeout_while_recovering(
    notify_socket: NotifySocket, watchdog: float | None
) -> None:
    """Recovery before READY=1 can outlast TimeoutStartSec=: keep asking for more time."""
    w = world()
    t = Target(
        name="perfsonar-testpoint",
        unit="perfsonar-testpoint.service",
        container="pt",
        image=parse(IMAGE),
    )
    stop = threading.Event()
    stop.set()
    Daemon(
        [t],
        SlowRecovery(0.75),
        Notifier(notify_socket.path),
        store=w.store,
        log=w.log,
        clock=w.clock,
        machine_id="x",
        watchdog=watchdog,
        stop=stop,
        startup_ping=0.15,
    ).run()
    msgs = notify_socket.drain()
    ready = msgs.index("READY=1\nSTATUS=watching perfsonar-testpoint")
    before, after = msgs[:ready], msgs[ready:]
    assert before[0].startswith("STATUS=starting: recovering")
    assert "STATUS=recovering perfsonar-testpoint.service" in before
    interval = min(0.15, watchdog) if watchdog else 0.15
    extends = [m for m in before if m.startswith("EXTEND_TIMEOUT_USEC=")]
    # one right away, then one per interval: never a gap systemd's deadline could fall into
    assert extends[0] == before[1]
    assert len(extends) >= 0.75 / interval - 1
    assert set(extends) == {f"EXTEND_TIMEOUT_USEC={round(interval * 3_000_000)}"}
    assert ("WATCHDOG=1" in before) == bool(watchdog)
    assert not [m for m in after if m.startswith("EXTEND_TIMEOUT_USEC=")]  # only while starting


def test_forked_runner_runs_the_pass_in_a_child_and_forwards_status(tmp_path: Path) -> None:
    """The idle daemon never imports podman-py: the pass happens in a forked child."""
    from psquadlet.config import parse_config
    from psquadlet.watch.app import Endpoints, ForkedRunner
    from psquadlet.watch.interfaces import LockedError
    from psquadlet.watch.state import FileStateStore
    from psquadlet.watch.targets import targets_from_config

    # a registry port nobody listens on: the check fails fast, in the child
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = parse_config(
        f'[registries."127.0.0.1:{port}"]\ntls_verify = false\n'
        f'[containers.pt]\nimage = "127.0.0.1:{port}/perfsonar/testpoint:systemd"\n',
        "test.toml",
    )
    targets = targets_from_config(config)
    out = io.StringIO()
    runner = ForkedRunner(
        config,
        Endpoints(podman_url="unix:///nonexistent", state_dir=str(tmp_path)),
        Logger(out, journal=True, tty=False),
    )
    statuses: list[str] = []
    report = runner.run_pass(targets, targets, statuses.append)
    (o,) = report.outcomes
    assert o.action == core.ERROR
    assert "connection refused" in o.message
    assert statuses == ["checking 1 image(s)"]
    assert FileStateStore(str(tmp_path)).load().get("pt").last_run == report.started
    with FileStateStore(str(tmp_path)).lock(), pytest.raises(LockedError):
        runner.run_pass(targets, targets, statuses.append)


def test_daemon_and_core_modules_do_not_import_podman_or_pystemd() -> None:
    import subprocess
    import sys

    code = (
        "import sys, psquadlet.watch.app, psquadlet.watch.daemon, psquadlet.watch.core; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('podman', 'pystemd', 'requests')); print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_psquadlet_watch_process_notifies_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The real command: READY after start-up recovery, STATUS, WATCHDOG, clean SIGTERM."""
    import signal
    import subprocess
    import sys

    cfg = tmp_path / "p.toml"
    cfg.write_text(
        '[registries."127.0.0.1:9"]\ntls_verify = false\n'
        '[containers.pt]\nimage = "127.0.0.1:9/perfsonar/testpoint:systemd"\n'
    )
    sock = NotifySocket(tmp_path / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "1000000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "psquadlet",
            "watch",
            "-c",
            str(cfg),
            "--state-dir",
            str(tmp_path / "state"),
            "--podman-url",
            "unix:///nonexistent",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        # start-up pings count too: wait for the idle status as well, or a slow start-up
        # (the forked recovery imports podman-py) gets SIGTERM before its first idle line
        while time.monotonic() < deadline and (
            sock.messages.count("WATCHDOG=1") < 2
            or not any(m.startswith("STATUS=idle") for m in sock.messages)
        ):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    assert proc.returncode == 0, err
    assert sock.messages.count("WATCHDOG=1") >= 2
    msgs = [m for m in sock.messages if m != "WATCHDOG=1"]  # pings may come during start-up
    ready = msgs.index("READY=1\nSTATUS=watching pt")
    # recovery ran before READY=1, asking systemd for more start time (half the watchdog)
    assert msgs[0].startswith("STATUS=starting: recovering")
    assert "EXTEND_TIMEOUT_USEC=1500000" in msgs[:ready]
    msgs = msgs[ready:]
    assert msgs[1].startswith("STATUS=idle; next check ")
    assert msgs[-1] == "STOPPING=1"
    assert "psquadlet watch: stopping" in err
    # the first start records a baseline, so a slot missed later is noticed
    state = (tmp_path / "state" / "state.json").read_text()
    assert '"last_run"' in state


def test_daemon_waits_on_a_state_file_of_a_newer_version(notify_socket: NotifySocket) -> None:
    """Issue 10 M6: no crash loop; the file is left alone and the daemon retries later."""
    from psquadlet.watch.state import StateTooNew

    w = world()

    def newer() -> object:
        raise StateTooNew("state file x was written by a newer psquadlet")

    w.store.load = newer  # type: ignore[assignment, method-assign]
    t = Target(
        name="perfsonar-testpoint",
        unit="perfsonar-testpoint.service",
        container="pt",
        image=parse(IMAGE),
        schedule=Schedule(daily=None, interval=1),
    )
    stop = threading.Event()
    waits: list[float] = []
    real_wait = stop.wait

    def spy(timeout: float | None = None) -> bool:
        waits.append(timeout or 0.0)
        stop.set()
        return real_wait(0)

    stop.wait = spy  # type: ignore[method-assign]
    Daemon.in_process(
        [t], w.deps, Notifier(notify_socket.path), machine_id="x", watchdog=None, stop=stop
    ).run()
    assert len(waits) == 1
    assert waits[0] > 3500
    assert "newer psquadlet" in w.log.text()
    assert w.store.saves == []
