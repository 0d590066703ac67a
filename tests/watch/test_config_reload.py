"""The running watcher follows its configuration (issue 17 item 6): after ``policy = "off"``
(and ``generate``) no more checks; a broken edit is reported once and the last good
configuration stays in force."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from test_daemon import NotifySocket
from watchfakes import IMAGE, OLD, ListLog, world

from psquadlet.config import load_config
from psquadlet.imageref import parse
from psquadlet.watch import core
from psquadlet.watch.daemon import Daemon
from psquadlet.watch.interfaces import SystemClock
from psquadlet.watch.liveconfig import LiveConfig
from psquadlet.watch.notify import Notifier
from psquadlet.watch.schedule import Schedule
from psquadlet.watch.targets import Target

REGISTRY = '[registries."127.0.0.1:9"]\ntls_verify = false\n'
CONTAINER = '[containers.pt]\nimage = "127.0.0.1:9/perfsonar/testpoint:systemd"\n'


def config_text(policy: str = "auto", interval: str = "1s") -> str:
    return (
        f"{REGISTRY}{CONTAINER}[containers.pt.update]\n"
        f'policy = "{policy}"\ninterval = "{interval}"\n'
    )


def replace(path: Path, text: str) -> None:
    """As an editor or Ansible writes it: a new file renamed over the old one."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_live_config_reloads_a_change_keeps_the_last_good_one_and_says_so_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "psquadlet.toml"
    path.write_text(config_text())
    log = ListLog()
    live = LiveConfig(path, load_config(path), log)
    assert live.changed() is None  # nothing changed: not even parsed
    replace(path, config_text(policy="off"))
    new = live.changed()
    assert new is not None
    assert new.containers[0].update.policy == "off"
    assert live.changed() is None
    replace(path, config_text(policy="off") + "[containers.pt.update.bogus]\n")
    for _ in range(3):
        assert live.changed() is None
    errors = [m for lvl, m in log.lines if lvl == "error"]
    assert len(errors) == 1, errors
    assert "keeping the last good one" in errors[0]
    assert f"{path}:" in errors[0]  # located: file:line: key
    assert live.config.containers[0].update.policy == "off"
    replace(path, config_text(policy="notify"))
    again = live.changed()
    assert again is not None
    assert again.containers[0].update.policy == "notify"


def test_a_state_dir_change_is_kept_for_the_restart(tmp_path: Path) -> None:
    path = tmp_path / "psquadlet.toml"
    path.write_text(config_text())
    log = ListLog()
    live = LiveConfig(path, load_config(path), log)
    replace(path, f'[watch]\nstate_dir = "{tmp_path}/elsewhere"\n' + config_text())
    assert live.changed() is not None
    assert "until psquadlet-watch is restarted" in log.text()


def test_daemon_loop_stops_checking_a_container_turned_off(tmp_path: Path) -> None:
    """The daemon loop over the fakes: once the reload says "off", no pass runs again."""
    w = world()
    w.registry.digests[IMAGE] = OLD  # up to date: each pass is one HEAD
    w.deps.clock = SystemClock()
    on = Target(
        name="perfsonar-testpoint",
        unit="perfsonar-testpoint.service",
        container="pt",
        image=parse(IMAGE),
        schedule=Schedule(daily=None, interval=1),
    )
    off = Target(
        name="perfsonar-testpoint",
        unit="perfsonar-testpoint.service",
        container="pt",
        image=parse(IMAGE),
        policy="off",
    )
    reports: list[core.PassReport] = []
    edited = threading.Event()
    taken: list[int] = []  # passes made when the daemon took the new configuration
    asked = threading.Semaphore(0)

    def reload() -> Sequence[Target] | None:
        asked.release()
        if edited.is_set() and not taken:
            taken.append(len(reports))
            return (off,)
        return None

    sock = NotifySocket(tmp_path / "notify")
    stop = threading.Event()
    daemon = Daemon.in_process(
        [on],
        w.deps,
        Notifier(sock.path),
        machine_id="x",
        watchdog=0.1,
        stop=stop,
        on_pass=reports.append,
        reload=reload,
    )
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not reports and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reports
        edited.set()
        while not taken and time.monotonic() < deadline:
            time.sleep(0.05)
        assert taken
        for _ in range(10):  # ten more looks at the configuration: well past a 1 s interval
            assert asked.acquire(timeout=20)
    finally:
        stop.set()
        thread.join(20)
        sock.close()
    assert not thread.is_alive()
    assert len(reports) == taken[0]  # not one pass after the reload
    assert w.registry.heads.count(IMAGE) == taken[0]
    assert any(m.startswith("STATUS=idle: nothing to watch") for m in sock.messages)
    assert "now watching nothing" in w.log.text()


def test_psquadlet_watch_follows_an_edited_configuration(tmp_path: Path) -> None:
    """The real command: passes every second, then policy = "off" ends them at the next
    wake-up; a broken edit after that is one error and the daemon goes on."""
    cfg = tmp_path / "p.toml"
    cfg.write_text(config_text())
    sock = NotifySocket(tmp_path / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "1000000"}
    env.pop("WATCHDOG_PID", None)
    err_path = tmp_path / "stderr"
    argv = [sys.executable, "-m", "psquadlet", "watch", "-c", str(cfg)]
    argv += ["--state-dir", str(tmp_path / "state"), "--podman-url", "unix:///nonexistent"]
    with open(err_path, "w") as err:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)

    def log() -> str:
        return err_path.read_text()

    def wait_for(what: str, cond: object) -> None:
        deadline = time.monotonic() + 60
        while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
            if proc.poll() is not None:
                raise AssertionError(f"psquadlet watch exited: {log()}")
            time.sleep(0.1)
        assert cond(), f"{what}; log:\n{log()}"  # type: ignore[operator]

    def pings() -> int:
        return sock.messages.count("WATCHDOG=1")

    try:
        wait_for("a first pass", lambda: log().count("pt: error: registry check failed") >= 1)
        replace(cfg, config_text(policy="off"))
        wait_for("the reload", lambda: "changed: reloaded" in log())
        wait_for("idle", lambda: any("nothing to watch" in m for m in sock.messages))
        seen = pings()
        wait_for("four wake-ups", lambda: pings() >= seen + 4)  # each one looks at the file
        replace(cfg, config_text(policy="auto") + "[containers.pt.update.bogus]\n")
        seen = pings()
        wait_for("the error", lambda: "keeping the last good one" in log())
        wait_for("four wake-ups", lambda: pings() >= seen + 4)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    assert proc.returncode == 0, log()
    after = log().split("changed: reloaded", 1)[1]
    assert "registry check failed" not in after  # no check once "off" was read
    assert after.count("keeping the last good one") == 1
