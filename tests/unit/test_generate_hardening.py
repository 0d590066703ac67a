"""generate under hostile conditions (issue 10: M1, M2, L1, L2, L12), through the library and the
command."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from psquadlet import fsutil, generate, plan
from psquadlet.errors import PsquadletError, RefusedError
from tests.unit.test_cli_generate import run

V = ("--format", "quadlet", "--podman-version", "5.4.2")


def container(name: str, image: str = "docker.io/library/busybox:1") -> str:
    return f'[containers.{name}]\nimage = "{image}"\n'


def options(
    cfg: Path, out: Path, force: bool = False, search: tuple[Path, ...] = ()
) -> generate.Options:
    return generate.Options(cfg, out, "quadlet", "5.4.2", False, force, unit_search_path=search)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".psquadlet"))


# --------------------------------------------------------------------------------- M1


def test_another_configurations_units_are_kept(tmp_path: Path) -> None:
    """M1: generate -c a.toml -o D; generate -c b.toml -o D used to remove a.container."""
    a, b, out = tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "out"
    a.write_text(container("a"))
    b.write_text(container("b"))
    assert run("generate", "-c", str(a), "-o", str(out), *V).exit_code == 0
    second = run("generate", "-c", str(b), "-o", str(out), *V)
    assert second.exit_code == 0, second.output
    assert "removed" not in second.stdout
    assert listing(out) == ["a.container", "b.container"]
    # Each configuration still removes what it wrote and no longer configures.
    a.write_text(container("a2"))
    third = run("generate", "-c", str(a), "-o", str(out), *V)
    assert f"removed: {out / 'a.container'}" in third.stdout
    assert listing(out) == ["a2.container", "b.container"]


def test_hand_made_copies_and_edits_are_not_removed_silently(tmp_path: Path) -> None:
    """M1: a copy that kept the marker is not this run's; an edited file is refused."""
    cfg, out = tmp_path / "c.toml", tmp_path / "out"
    cfg.write_text(container("x") + container("y"))
    generate.apply(generate.plan_generate(options(cfg, out)))
    shutil.copy(out / "x.container", out / "copy.container")
    with (out / "y.container").open("a") as handle:
        handle.write("# my local change\n")
    cfg.write_text(container("x"))
    p = generate.plan_generate(options(cfg, out))
    actions = {a.path.name: a for a in p.plan.actions}
    assert "copy.container" not in actions  # never psquadlet's: left alone
    assert actions["y.container"].kind == plan.REFUSED
    assert "edited since psquadlet wrote it" in actions["y.container"].reason
    with pytest.raises(RefusedError, match="nothing was written"):
        generate.apply(p)
    assert (out / "y.container").exists()
    generate.apply(generate.plan_generate(options(cfg, out, force=True)))
    assert listing(out) == ["copy.container", "x.container"]


def test_a_folder_from_before_the_manifest_goes_by_the_marker_source(tmp_path: Path) -> None:
    cfg, out = tmp_path / "c.toml", tmp_path / "out"
    cfg.write_text(container("x") + container("y"))
    generate.apply(generate.plan_generate(options(cfg, out)))
    (out / plan.MANIFEST).unlink()
    (out / "other.container").write_text(
        (out / "x.container").read_text().replace(str(cfg), str(tmp_path / "other.toml"))
    )
    cfg.write_text(container("x"))
    p = generate.plan_generate(options(cfg, out))
    assert {(a.kind, a.path.name) for a in p.plan.changes} == {(plan.REMOVE, "y.container")}


# --------------------------------------------------------------------------------- M2


def test_names_of_installed_units_are_refused(tmp_path: Path) -> None:
    """M2: a container or volume named like an installed unit would shadow it."""
    installed = tmp_path / "lib-systemd"
    installed.mkdir()
    (installed / "dbus.service").write_text("[Service]\nExecStart=/usr/bin/dbus-daemon\n")
    (installed / "data-volume.service").write_text("[Service]\n")
    (installed / "psquadlet-watch.service").write_text("[Service]\n")
    cfg, out = tmp_path / "c.toml", tmp_path / "out"
    cfg.write_text(
        container("dbus") + container("web") + 'volumes = ["data:/data"]\n[volumes.data]\n'
    )
    p = generate.plan_generate(options(cfg, out, search=(installed,)))
    refused = {a.path.name: a.reason for a in p.plan.refused}
    assert sorted(refused) == ["data.volume", "dbus.container"]
    assert (
        f"would shadow the installed unit {installed / 'dbus.service'}" in refused["dbus.container"]
    )
    with pytest.raises(RefusedError):
        generate.apply(p)
    assert not out.exists()
    forced = generate.plan_generate(options(cfg, out, search=(installed,), force=True))
    assert not forced.plan.refused
    # A unit psquadlet generated there itself (e.g. the service format earlier) is no obstacle.
    generate.apply(forced)
    (installed / "dbus.service").write_text((out / "dbus.container").read_text())
    fresh = generate.plan_generate(options(cfg, tmp_path / "out2", search=(installed,)))
    assert [a.path.name for a in fresh.plan.refused] == ["data.volume"]


def test_default_search_path_follows_the_mode() -> None:
    assert Path("/lib/systemd/system") in plan.unit_search_path(user=False)
    assert Path("/usr/lib/systemd/user") in plan.unit_search_path(user=True)
    assert plan.systemd_unit_name("a.container") == "a.service"
    assert plan.systemd_unit_name("a.volume") == "a-volume.service"
    assert plan.systemd_unit_name("a.service") == "a.service"


# --------------------------------------------------------------------------------- L1


def test_a_newline_in_the_config_path_injects_nothing(tmp_path: Path) -> None:
    """L1: the -c path is copied into the marker line; a newline in it must not end it."""
    folder = tmp_path / "x\n[Service]\nExecStartPre=\\bin\\evil #"
    folder.mkdir()
    cfg = folder / "c.toml"
    cfg.write_text(container("tp"))
    out = tmp_path / "out"
    result = run("generate", "-c", str(cfg), "-o", str(out), *V)
    assert result.exit_code == 0, result.output
    text = (out / "tp.container").read_text()
    first, rest = text.split("\n", 1)
    assert "\\x0a[Service]\\x0aExecStartPre=\\x5cbin\\x5cevil #" in first
    assert "ExecStartPre" not in rest
    assert "[Service]\nExecStartPre" not in text
    # The escaped source still identifies the run's own files.
    again = run("generate", "-c", str(cfg), "-o", str(out), *V)
    assert f"unchanged: {out / 'tp.container'}" in again.stdout


# --------------------------------------------------------------------------------- L2


FOUR = "".join(container(n) for n in ("a", "b", "c", "d"))


def test_a_failing_write_leaves_every_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """L2: the third temp file fails (disk full): no target changed, no temp file left."""
    cfg, out = tmp_path / "c.toml", tmp_path / "out"
    cfg.write_text(FOUR)
    generate.apply(generate.plan_generate(options(cfg, out)))
    before = {p.name: p.read_text() for p in out.iterdir()}
    cfg.write_text(FOUR.replace("busybox:1", "busybox:2"))
    real = fsutil._write_temp
    calls = []

    def flaky(path: Path, text: str, mode: int) -> Path:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, text, mode)

    monkeypatch.setattr(fsutil, "_write_temp", flaky)
    with pytest.raises(PsquadletError, match="No space left on device; nothing was written"):
        generate.apply(generate.plan_generate(options(cfg, out)))
    assert {p.name: p.read_text() for p in out.iterdir()} == before


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("needs root and permission to mount a tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs")
def test_a_full_disk_writes_nothing(tmp_path: Path) -> None:
    """L2: a real full filesystem (a 8 KiB tmpfs): exit 1, a plain message, no file."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(FOUR)
    with tmpfs(tmp_path / "small", "8k") as out:
        result = run("generate", "-c", str(cfg), "-o", str(out), *V)
        assert result.exit_code == 1, result.output
        assert "No space left on device; nothing was written" in result.stderr
        assert "Traceback" not in result.output
        assert listing(out) == []
        assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tmpfs read-only")
def test_a_read_only_folder_is_reported_plainly(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(FOUR)
    with tmpfs(tmp_path / "ro", "1m") as out:
        subprocess.run(["mount", "-o", "remount,ro", str(out)], check=True)
        result = run("generate", "-c", str(cfg), "-o", str(out), *V)
        assert result.exit_code == 1
        assert "Read-only file system" in result.stderr
        assert "nothing was written" in result.stderr
        assert "Traceback" not in result.output


def test_concurrent_runs_wait_for_the_folder_lock(tmp_path: Path) -> None:
    """L2: a second generate waits while the folder is locked, then completes."""
    cfg, out = tmp_path / "c.toml", tmp_path / "out"
    cfg.write_text(FOUR)
    argv = [sys.executable, "-m", "psquadlet", "generate", "-c", str(cfg), "-o", str(out), *V]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    with fsutil.folder_lock(out):
        child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.5)
        assert child.poll() is None  # waiting for the lock
        assert listing(out) == []
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    assert listing(out) == ["a.container", "b.container", "c.container", "d.container"]


def test_a_file_removed_meanwhile_is_fine(tmp_path: Path) -> None:
    cfg, out = tmp_path / "c.toml", tmp_path / "out"
    cfg.write_text(FOUR)
    generate.apply(generate.plan_generate(options(cfg, out)))
    cfg.write_text(container("a"))
    p = generate.plan_generate(options(cfg, out))
    (out / "b.container").unlink()  # ENOENT at removal time
    generate.apply(p)
    assert listing(out) == ["a.container"]


# --------------------------------------------------------------------------------- L12


def test_temp_files_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    """L12: a kill -9 between writing a temp file and renaming it leaves .NAME.XXXXXXXX.tmp."""
    cfg, out = tmp_path / "c.toml", tmp_path / "out"
    cfg.write_text(container("a"))
    out.mkdir()
    (out / ".a.container.k2j_9xq1.tmp").write_text("half\n")
    (out / ".psquadlet-manifest.json.abcdefgh.tmp").write_text("{")
    (out / "notes.tmp").write_text("mine\n")
    (out / ".vimrc.tmp").write_text("mine\n")
    result = run("generate", "-c", str(cfg), "-o", str(out), *V)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == [
        ".vimrc.tmp",
        "notes.tmp",
    ]
