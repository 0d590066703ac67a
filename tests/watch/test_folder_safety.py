"""Files root writes in folders others could reach (issue 17 item 4): real files, real links.

Root keeps its state, lock, outbox and metrics files in folders; whoever else can write in
such a folder can plant a symbolic link or swap a file between two of root's steps. These tests
plant them for real (and a real ``nobody``-owned folder) and check that root neither follows a
link nor writes in a folder others can write. They run as root (as CI does).
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from psquadlet import fsutil
from psquadlet.config import DEFAULT_CONFIG_TEXT
from psquadlet.errors import UnsafeFolderError
from psquadlet.metrics import MetricsWriter
from psquadlet.notifications.message import Message
from psquadlet.notifications.outbox import Outbox
from psquadlet.watch.interfaces import WatchError
from psquadlet.watch.state import FileStateStore, WatchState

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to nobody)")

SECRET = "root's secret\n"


def _nobody() -> int:
    return pwd.getpwnam("nobody").pw_uid


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.write_text(SECRET)
    victim.chmod(0o600)
    return victim


def test_mode_is_set_on_the_descriptor_so_a_swapped_in_link_gets_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attacker swaps the temp file for a link to a 0600 file while root writes it."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    victim = _victim(tmp_path)
    real_fsync = os.fsync

    def swap_then_fsync(fd: int) -> None:
        real_fsync(fd)
        for name in os.listdir(folder):
            if name.endswith(".tmp"):  # the temp file, already written: swap it for a link
                os.unlink(folder / name)
                os.symlink(victim, folder / name)

    monkeypatch.setattr(os, "fsync", swap_then_fsync)
    fsutil.atomic_write(folder / "psquadlet.prom", "metrics\n", 0o644)
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert victim.read_text() == SECRET


def test_a_planted_lock_link_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o755)
    victim = _victim(tmp_path)
    (state_dir / "lock").symlink_to(victim)
    store = FileStateStore(str(state_dir))
    symlink = r"cannot open lock file .*lock: is a symbolic link"
    with pytest.raises(WatchError, match=symlink), store.lock():
        pass
    assert victim.read_text() == SECRET


def test_a_planted_fifo_lock_neither_hangs_nor_is_used(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "lock")
    store = FileStateStore(str(tmp_path))
    with pytest.raises(WatchError, match="not a regular file"), store.lock():
        pass


def test_other_lock_files_never_follow_links(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / fsutil.LOCK_NAME).symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"), fsutil.folder_lock(out):
        pass
    box_dir = tmp_path / "notifications"
    box_dir.mkdir(mode=0o700)
    (box_dir / "mail.lock").symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        Outbox(box_dir, "mail", 10).add(Message("t", "b", "upgraded", "", 1.0), 0)
    assert victim.read_text() == SECRET


def test_a_state_file_link_is_moved_aside_never_read(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    (tmp_path / "state.json").symlink_to(victim)
    state = FileStateStore(str(tmp_path)).load()
    assert state.containers == ()
    assert "a symbolic link" in state.notes[0]
    assert not (tmp_path / "state.json").exists()
    assert victim.read_text() == SECRET


@pytest.mark.parametrize("how", ["nobody-owned", "world-writable", "group-writable-parent"])
def test_a_state_folder_others_can_write_is_refused(tmp_path: Path, how: str) -> None:
    top = tmp_path / "top"
    state_dir = top / "state"
    state_dir.mkdir(parents=True, mode=0o755)
    if how == "nobody-owned":
        os.chown(state_dir, _nobody(), -1)
    elif how == "world-writable":
        state_dir.chmod(0o1777)  # sticky does not help the folder itself: names are fixed
    else:
        top.chmod(0o775)
    store = FileStateStore(str(state_dir))
    with pytest.raises(WatchError, match=f"refusing the state folder {state_dir}"):
        store.save(WatchState())
    with pytest.raises(WatchError, match="refusing the state folder"), store.lock():
        pass
    assert os.listdir(state_dir) == []


def test_a_sticky_world_writable_parent_is_fine(tmp_path: Path) -> None:
    """/tmp itself: others cannot rename what they do not own in a sticky folder."""
    top = tmp_path / "tmp"
    top.mkdir()
    top.chmod(0o1777)
    store = FileStateStore(str(top / "state"))
    store.save(WatchState())
    with store.lock():
        pass
    assert fsutil.folder_problem(top / "state") == ""


def test_a_nobody_owned_outbox_or_metrics_folder_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    (state_dir / "notifications").mkdir(parents=True, mode=0o700)
    os.chown(state_dir / "notifications", _nobody(), -1)
    with pytest.raises(UnsafeFolderError, match="refusing the outbox folder"):
        Outbox(state_dir / "notifications", "mail", 10).add(
            Message("t", "b", "upgraded", "", 1.0), 0
        )
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    os.chown(metrics, _nobody(), -1)
    writer = MetricsWriter(state_dir, metrics)
    assert not writer.write(WatchState())
    assert "refusing the metrics folder" in writer.last_error
    assert os.listdir(metrics) == []


def test_block_on_an_unsafe_state_folder_is_a_clear_error(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state_dir.chmod(0o777)
    digest = "sha256:" + "c" * 64
    config = tmp_path / "psquadlet.toml"
    config.write_text(DEFAULT_CONFIG_TEXT)
    result = subprocess.run(
        [sys.executable, "-m", "psquadlet", "block", "--state-dir", str(state_dir),
         "-c", str(config), "perfsonar-testpoint", digest],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"refusing the state folder {state_dir}" in result.stderr
