"""Every command as a normal user (issue 17 item 7): a real account, ``runuser``, a clean env.

Before, a user's ``block``/``pin`` failed on ``/var/lib/psquadlet/lock``, the stop hook died
with a traceback and the ``--user`` watcher had no folder it could write. A user's state
(state file, lock, outboxes, hook marks) now lives in ``$XDG_STATE_HOME/psquadlet``
(``~/.local/state/psquadlet``), the one rule ``model.default_state_dir`` that every command
and the user's units follow. Runs as root (it creates the account); no test bed, no Podman.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sysconfig
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from psquadlet import model
from tests.support import require_programs

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.access("/usr/bin/python3", os.X_OK),
    reason="needs root (useradd, runuser) and the system's python3",
)

DIGEST = "sha256:" + "d" * 64
CONTAINER = "perfsonar-testpoint"
IMAGE = "127.0.0.1:9/perfsonar/testpoint:systemd"  # loopback, nothing listens: no traffic out
ROOT = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
"""The system's Python (the test venv's may live below root's 0700 home); the tree and the
venv's packages come through PYTHONPATH."""


@dataclass(frozen=True)
class User:
    name: str
    home: Path
    uid: int

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``psquadlet ARGS`` as this user, with a login's minimal environment only."""
        clean = {
            "HOME": str(self.home),
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONPATH": f"{ROOT}:{sysconfig.get_paths()['purelib']}",
        }
        argv = ["runuser", "-u", self.name, "--", "env", "-i"]
        argv += [f"{k}={v}" for k, v in {**clean, **(env or {})}.items()]
        argv += [PYTHON, "-m", "psquadlet", *args]
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=300, cwd=self.home
        )

    @property
    def state(self) -> Path:
        return self.home / ".local" / "state" / "psquadlet"


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    require_programs("useradd", "userdel", "runuser")
    name = f"psq{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True, timeout=60)
    entry = pwd.getpwnam(name)
    try:
        yield User(name, Path(entry.pw_dir), entry.pw_uid)
    finally:
        _end_processes_of(name)
        subprocess.run(["userdel", "--remove", name], check=False, timeout=60, capture_output=True)
        for left in (f"/tmp/podman-run-{entry.pw_uid}", f"/tmp/containers-user-{entry.pw_uid}"):
            shutil.rmtree(left, ignore_errors=True)  # rootless Podman's, without a runtime dir


def _end_processes_of(name: str) -> None:
    """What the tests left running as the account (rootless Podman's pause process, started
    by status/doctor/upgrade), ended by pid: userdel refuses a user with processes."""
    uid = pwd.getpwnam(name).pw_uid
    for proc in Path("/proc").iterdir():  # not ps: the Python 3.9 root these tests run in has none
        if not proc.name.isdigit():
            continue
        try:
            owner = proc.stat().st_uid
        except OSError:
            continue
        if owner == uid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def _config(user: User, extra: str = "") -> str:
    """A configuration in the user's home, readable by them."""
    path = user.home / f"psquadlet-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(
        f'[containers.{CONTAINER}]\npreset = "perfsonar-testpoint"\nimage = "{IMAGE}"\n{extra}'
    )
    os.chown(path, user.uid, -1)
    return str(path)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_rule_is_one_function() -> None:
    assert model.default_state_dir(0, {}) == "/var/lib/psquadlet"
    assert model.default_state_dir(1000, {"HOME": "/home/a"}) == "/home/a/.local/state/psquadlet"
    env = {"HOME": "/home/a", "XDG_STATE_HOME": "/srv/st"}
    assert model.default_state_dir(1000, env) == "/srv/st/psquadlet"
    relative = {"HOME": "/home/a", "XDG_STATE_HOME": "st"}  # the XDG spec: ignored
    assert model.default_state_dir(1000, relative) == "/home/a/.local/state/psquadlet"
    assert model.WatchSettings().state_dir == model.default_state_dir()


def test_block_pin_and_their_undo_keep_the_users_state(user: User) -> None:
    config = _config(user)
    assert "blocked" in _ok(user.run("block", "-c", config, CONTAINER, DIGEST, "--reason", "x"))
    assert "pinned" in _ok(user.run("pin", "-c", config, CONTAINER, "--reason", "lab"))
    state = json.loads((user.state / "state.json").read_text())
    entry = state["containers"][CONTAINER]
    assert entry["pinned"] == "lab"
    assert [b["digest"] for b in entry["bad_digests"]] == [DIGEST]
    assert (user.state / "lock").stat().st_uid == user.uid
    assert "unblocked" in _ok(user.run("unblock", "-c", config, CONTAINER, DIGEST))
    assert "unpinned" in _ok(user.run("unpin", "-c", config, CONTAINER))


def test_xdg_state_home_moves_it(user: User) -> None:
    config = _config(user)
    elsewhere = user.home / "elsewhere"
    _ok(user.run("pin", "-c", config, CONTAINER, env={"XDG_STATE_HOME": str(elsewhere)}))
    assert (elsewhere / "psquadlet" / "state.json").is_file()


def test_status_reads_the_users_state(user: User) -> None:
    config = _config(user)
    _ok(user.run("pin", "-c", config, CONTAINER, "--reason", "held for the test"))
    result = user.run("status", "-c", config, "--json")
    assert "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "psquadlet-status/1"
    assert "held for the test" in json.dumps(doc)


def test_validate_and_generate_are_quiet_about_the_users_folders(user: User) -> None:
    config = _config(user)
    result = user.run("validate", "-c", config)
    assert "OK: 1 containers" in _ok(result)
    assert "warning" not in result.stderr
    result = user.run("generate", "-c", config, "--user", "--podman-version", "5.4.2")
    _ok(result)
    assert "warning" not in result.stderr
    unit = user.home / ".config" / "systemd" / "user" / "psquadlet-watch.service"
    text = unit.read_text()
    assert "StateDirectory=" not in text  # the user's folder comes from the one rule
    assert "/var/lib/psquadlet" not in text


def test_validate_and_generate_warn_about_folders_the_user_cannot_write(user: User) -> None:
    config = _config(
        user, '\n[watch]\nstate_dir = "/var/lib/psquadlet"\n\n[metrics]\ntextfile_dir = "/root"\n'
    )
    result = user.run("validate", "-c", config)
    _ok(result)
    assert "watch.state_dir /var/lib/psquadlet: /var/lib is not writable" in result.stderr
    assert "metrics.textfile_dir /root: /root is not writable" in result.stderr
    result = user.run("generate", "-c", config, "--user", "--dry-run", "--podman-version", "5.4")
    _ok(result)
    assert f"psquadlet run as uid {user.uid} cannot use it" in result.stderr


def test_the_stop_hook_queues_in_the_users_outbox(user: User) -> None:
    """The stop hook of a user's container: its mark and outbox in the user's folder."""
    config = _config(
        user,
        '\n[notifications]\ntimeout = "2s"\n\n'
        '[notifications.channels.hook]\nurl = "json://127.0.0.1:9/"\n',
    )
    result = user.run(
        "notify", "-c", config, "--hook", "--event", "unhealthy", "--unit", f"{CONTAINER}.service",
        env={"SERVICE_RESULT": "exit-code", "EXIT_CODE": "killed", "EXIT_STATUS": "KILL"},
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.returncode == 1  # nothing listens on port 9: kept for a later try
    assert "hook: failed" in result.stdout
    assert (user.state / "hooks" / f"{CONTAINER}.service.stopped").is_file()
    box = json.loads((user.state / "notifications" / "hook.json").read_text())
    assert len(box["pending"]) == 1


@pytest.mark.parametrize(
    ("args", "schema"),
    [
        (["doctor", "--json"], "psquadlet-doctor/1"),
        (["upgrade", "--dry-run", "--json"], "psquadlet-upgrade/1"),
    ],
)
def test_json_commands_as_a_user_answer_in_json(user: User, args: list[str], schema: str) -> None:
    """No Podman socket of the user's here: whatever the verdict, JSON and no traceback."""
    config = _config(user)
    result = user.run(*args, "-c", config)
    assert "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["schema"] == schema
