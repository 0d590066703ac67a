"""Never an untested image (issue 17 item 3): an upgrade killed with SIGKILL after each of its
steps, or with its state folder full from any step on, always ends, once recovered, with the
unit running and pointed at (so a restart or a boot starts) the old image or a new one that
passed the health gate.

The pass runs in a forked process over the real state file (``FileStateStore``); the fakes of
Podman and systemd are saved to a file after every step, and the process kills itself with
SIGKILL after step N, for every N. The full folder is a real tmpfs of 512 KiB, filled at step N.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import pickle
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from watchfakes import (
    NAME,
    NEW,
    OLD,
    FakeClock,
    FakeImages,
    FakeRegistry,
    FakeUnits,
    ListLog,
    world,
)

from psquadlet.imageref import ImageRef, parse
from psquadlet.watch import core
from psquadlet.watch.interfaces import WatchError
from psquadlet.watch.schedule import Schedule
from psquadlet.watch.state import PHASE_PULLING, FileStateStore
from psquadlet.watch.targets import Target
from tests.support import require_root

UNIT = "perfsonar-testpoint.service"
DIGEST_IMAGE = f"{NAME}:systemd"
BASE = f"{NAME}:v5.2.0-systemd"
RELEASE = "v5.2.1-systemd"
MODES = ("digest", "drop-in", "retag")
CASES = [(m, True) for m in MODES] + [(m, False) for m in MODES]
STEPS = {  # the calls that change something: each is one step of the upgrade
    "images": ("pull", "tag", "remove"),
    "units": ("restart", "start", "reset_failed"),
    "overrides": ("set_image",),
    "store": ("save",),
}


class TagRegistry(FakeRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.tag_list = ["v5.2.0-systemd", RELEASE]

    def tags(self, repo: ImageRef) -> list[str]:
        return list(self.tag_list)


class DropIns:
    """A Quadlet drop-in: the unit's container is then created from *image*."""

    def __init__(self, units: FakeUnits) -> None:
        self.units = units
        self.configured = dict(units.units)

    def set_image(self, unit: str, image: str | None, base: str, why: str) -> str:
        container, tagref = self.configured[unit]
        self.units.units[unit] = (container, image or tagref)
        return f"drop-in /etc/containers/systemd/{unit}.d/50-psquadlet-release.conf"


@dataclass
class Bed:
    registry: FakeRegistry
    images: FakeImages
    units: FakeUnits
    overrides: DropIns | None
    clock: FakeClock


def new_bed(mode: str, healthy: bool) -> tuple[Bed, Target]:
    image = DIGEST_IMAGE if mode == "digest" else BASE
    w = world((("perfsonar-testpoint", "pt", image),))
    registry: FakeRegistry = w.registry
    if mode != "digest":
        registry = TagRegistry()
        registry.digests = {BASE: w.registry.digests[image], f"{NAME}:{RELEASE}": NEW}
    if not healthy:
        w.units.dies_on.add("new0")
    overrides = DropIns(w.units) if mode == "drop-in" else None
    kw: dict[str, Any] = {}
    if mode != "digest":
        kw = {"track": "patch", "tag_pattern": "v{version}-systemd"}
    t = Target(
        name="perfsonar-testpoint",
        unit=UNIT,
        container="pt",
        image=parse(image),
        schedule=Schedule(),
        health_timeout=60,
        **kw,
    )
    return Bed(registry, w.images, w.units, overrides, w.clock), t


class Stepping:
    """*inner* whose changing calls each count as a step, reported to *step* after the call."""

    def __init__(self, inner: Any, names: tuple[str, ...], step: Callable[[str], None]) -> None:
        self._inner, self._names, self._step = inner, names, step

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._names:
            return attr

        def call(*args: Any, **kw: Any) -> Any:
            try:
                return attr(*args, **kw)
            finally:
                self._step(name)

        return call


def deps_for(bed: Bed, state_dir: Path, step: Callable[[str], None]) -> core.Deps:
    def wrap(part: str, inner: Any) -> Any:
        return Stepping(inner, STEPS[part], step)

    return core.Deps(
        registry=bed.registry,
        images=wrap("images", bed.images),
        units=wrap("units", bed.units),
        clock=bed.clock,
        store=wrap("store", FileStateStore(str(state_dir))),
        log=ListLog(),
        overrides=wrap("overrides", bed.overrides) if bed.overrides else None,
        health_interval=5.0,
    )


def save_bed(bed: Bed, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(bed))
    os.replace(tmp, path)


def load_bed(path: Path) -> Bed:
    bed = pickle.loads(path.read_bytes())
    assert isinstance(bed, Bed)
    return bed


def killed_pass(bed_file: Path, state_dir: Path, t: Target, kill_after: int) -> int:
    """One pass in a forked process that SIGKILLs itself after step *kill_after* (0: never).

    Returns the number of steps the pass made (only when it was not killed)."""
    count_file = bed_file.with_suffix(".steps")
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            bed = load_bed(bed_file)
            steps = 0

            def step(name: str) -> None:
                nonlocal steps
                steps += 1
                save_bed(bed, bed_file)
                if steps == kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)

            core.run_pass((t,), deps_for(bed, state_dir, step))
            count_file.write_text(str(steps))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if kill_after:
        assert os.WIFSIGNALED(status), status
        assert os.WTERMSIG(status) == signal.SIGKILL, status
        return 0
    assert os.WIFEXITED(status), status
    assert os.WEXITSTATUS(status) == 0, status
    return int(count_file.read_text())


def assert_safe(bed: Bed, state_dir: Path, t: Target, healthy: bool, why: str) -> None:
    """Recovered: the unit runs, and starts again, the old image or a gated new one."""
    cs = FileStateStore(str(state_dir)).load().get(t.name)
    assert cs.phase == "", why
    running = bed.images.containers["pt"]
    assert running.running, why
    assert bed.units.state[UNIT] == "active", why
    bed.units.restart(UNIT, 1)  # a boot, or Podman's health restart: what the unit points at
    booted = bed.images.containers["pt"].image_id
    assert booted == running.image_id, f"{why}: runs {running.image_id}, a restart runs {booted}"
    assert running.image_id in (("old0", "new0") if healthy else ("old0",)), why
    assert cs.running_image_id == running.image_id, why
    if running.image_id == "new0":
        assert cs.history[-1].action == core.UPGRADED, why
        assert "health gate passed" in cs.history[-1].reason, why


@pytest.mark.parametrize(("mode", "healthy"), CASES)
def test_kill_9_after_every_step_of_an_upgrade_recovers_to_a_gated_image(
    tmp_path: Path, mode: str, healthy: bool
) -> None:
    bed, t = new_bed(mode, healthy)
    save_bed(bed, tmp_path / "whole.bed")
    total = killed_pass(tmp_path / "whole.bed", tmp_path / "whole", t, 0)
    end = load_bed(tmp_path / "whole.bed")
    assert end.images.containers["pt"].image_id == ("new0" if healthy else "old0")
    assert total >= 6  # pull, tags, restarts, saves: the matrix below has rows
    for n in range(1, total + 1):
        bed_file, state_dir = tmp_path / f"k{n}.bed", tmp_path / f"k{n}"
        save_bed(new_bed(mode, healthy)[0], bed_file)
        killed_pass(bed_file, state_dir, t, n)
        bed = load_bed(bed_file)
        deps = deps_for(bed, state_dir, lambda _: None)
        core.recover_now((t,), deps)
        assert_safe(bed, state_dir, t, healthy, f"{mode}, killed after step {n} of {total}")
        # and the next pass goes on from there as if nothing had happened
        core.run_pass((t,), deps)
        assert_safe(bed, state_dir, t, healthy, f"{mode}, pass after a kill at step {n}")
        assert bed.images.containers["pt"].image_id == ("new0" if healthy else "old0")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 512 KiB tmpfs: its state folder fills up for real."""
    require_root()
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(folder: Path) -> None:
    try:
        with open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise


@pytest.mark.parametrize(("mode", "healthy"), CASES)
def test_a_state_folder_full_from_any_step_on_never_leaves_an_untested_image(
    small_tmpfs: Path, mode: str, healthy: bool
) -> None:
    state_dir = small_tmpfs / "state"
    total = 0

    def count(_: str) -> None:
        nonlocal total
        total += 1

    bed, t = new_bed(mode, healthy)
    core.run_pass((t,), deps_for(bed, state_dir, count))
    for n in range(1, total + 1):
        shutil.rmtree(state_dir, ignore_errors=True)  # a fresh, empty folder
        assert not list(small_tmpfs.iterdir())
        bed, t = new_bed(mode, healthy)
        steps = 0

        def fill_at(_: str, n: int = n) -> None:
            nonlocal steps
            steps += 1
            if steps == n:  # e.g. the pull filled the disk
                fill(small_tmpfs)

        why = f"{mode}, folder full from step {n} of {total}"
        error = ""
        try:
            core.run_pass((t,), deps_for(bed, state_dir, fill_at))
        except WatchError as e:
            error = str(e)
        if n < total:  # a save came after: the pass says so, never silent
            assert error.startswith("cannot write state file"), why
        # Before any recovery: the unit runs, and a restart starts, what the pass left
        running = bed.images.containers["pt"].image_id
        assert running in (("old0", "new0") if healthy else ("old0",)), why
        bed.units.restart(UNIT, 1)
        assert bed.images.containers["pt"].image_id == running, why
        # The operator frees space; the watcher's next start recovers
        (small_tmpfs / "filler").unlink()
        core.recover_now((t,), deps_for(bed, state_dir, lambda _: None))
        assert_safe(bed, state_dir, t, healthy, why)


def test_a_pull_phase_left_by_an_older_psquadlet_with_the_tag_moved_is_put_back() -> None:
    """Before this fix the tag moved while the state still said "pulling"; such a state file,
    found after an upgrade of psquadlet, is recovered onto the old image too."""
    w = world()
    t = Target(
        name="perfsonar-testpoint",
        unit=UNIT,
        container="pt",
        image=parse(DIGEST_IMAGE),
        schedule=Schedule(),
    )
    cs = w.store.state.get(t.name)
    w.store.state = w.store.state.put(
        dataclasses.replace(
            cs,
            phase=PHASE_PULLING,
            phase_digest=NEW,
            previous_digest=OLD,
            previous_image_id="old0",
            running_image_id="old0",
        )
    )
    w.images.pull(f"{NAME}@{NEW}")
    w.images.tag("new0", parse(DIGEST_IMAGE))  # the old order: tagged, then killed
    w.units.restart(UNIT, 1)  # and Podman's health restart ran it before the watcher came back
    assert w.images.containers["pt"].image_id == "new0"
    core.recover_now((t,), w.deps)
    assert w.images.tags[DIGEST_IMAGE] == "old0"
    assert w.images.containers["pt"].image_id == "old0"
    assert w.store.state.get(t.name).phase == ""
    assert "untested image" in w.log.text()
