"""The switch-over and its undo, as plain logic over ``HostOps``.

Order (each step recorded as begun before it is done, see ``record``): keep a copy of the old
unit; stop it (systemd stops the units that require it too) or stop the old container and
rename it aside; move the unit file out of systemd's search path (disabled first when it was
enabled); write the configuration; generate the units; start the new unit behind the
watcher's health gate, then the dependents that were running. Any failure undoes it all
(``restore``), and so does ``psquadlet adopt --undo`` later, from the record alone.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from psquadlet import fsutil, marker
from psquadlet.adopt import record
from psquadlet.adopt.hostops import HostOps
from psquadlet.adopt.record import AdoptError, Record
from psquadlet.adopt.volumes import Copy, copy_argv
from psquadlet.errors import PsquadletError

ASIDE_SUFFIX = "-psquadlet-adopted"

Generate = Callable[[], "tuple[list[str], Callable[[], None]]"]
"""Plans the units: (the files it will create, the function that writes them)."""
Gate = Callable[[], str]
"""Starts the new unit and waits for it to be healthy: "" or why it is not."""


@dataclass(frozen=True)
class Adoption:
    """What to take over and what to write instead."""

    name: str
    shape: str
    config_path: Path
    config_text: str
    unit_path: Path | None = None
    container: str = ""
    copy: Copy | None = None
    """``--into-volumes``: the folder to copy into a named volume."""

    @property
    def unit(self) -> str:
        return f"{self.name}.service"


def _read_unit(path: Path) -> tuple[str, int]:
    try:
        return path.read_text(encoding="utf-8"), path.stat().st_mode & 0o777
    except (OSError, UnicodeDecodeError) as exc:
        raise AdoptError(f"{path}: cannot read: {exc}") from None


def switch_over(
    a: Adoption, ops: HostOps, state_dir: Path, generate: Generate, gate: Gate
) -> Record:
    """Adopt; on any failure put everything back and raise AdoptError saying so."""
    rec = Record(a.name, a.shape, str(a.config_path), container=a.container)
    if a.unit_path is not None:
        rec.unit_path = str(a.unit_path)
        rec.was_enabled, rec.was_active = ops.unit_state(a.unit)
        rec.dependents = ops.dependents(a.unit)
    else:
        rec.was_active = bool(ops.container_running(a.container))
    record.step(state_dir, rec, "keep")
    try:
        if a.unit_path is not None:
            text, mode = _read_unit(a.unit_path)
            kept = record.folder(state_dir, a.name) / a.unit_path.name
            fsutil.atomic_write(kept, text, mode)
            rec.kept_unit = str(kept)
        record.step(state_dir, rec, "keep", done=True)
        _forward(a, rec, ops, state_dir, (generate, gate))
    except (PsquadletError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problems = restore(rec, ops, state_dir)
        if problems:
            raise AdoptError(
                f"adoption of {a.name} failed ({reason}), and putting the old one back did not "
                f"finish: {'; '.join(problems)}; run 'psquadlet adopt --undo {a.name}' again"
            ) from None
        raise AdoptError(
            f"adoption of {a.name} failed, the old one is back as it was: {reason}"
        ) from None
    return rec


def _forward(
    a: Adoption, rec: Record, ops: HostOps, state_dir: Path, how: tuple[Generate, Gate]
) -> None:
    generate, gate = how
    record.step(state_dir, rec, "stop")
    if a.unit_path is not None:
        ops.systemctl("stop", "--", a.unit)
    else:
        if rec.was_active:
            ops.podman("stop", "--", a.container)
        rec.container_aside = a.container + ASIDE_SUFFIX
        record.save(state_dir, rec)
        ops.podman("rename", a.container, rec.container_aside)
    record.step(state_dir, rec, "stop", done=True)
    if a.unit_path is not None:
        record.step(state_dir, rec, "move")
        if rec.was_enabled:
            ops.systemctl("disable", "--", a.unit)
        a.unit_path.unlink(missing_ok=True)
        ops.systemctl("daemon-reload")
        record.step(state_dir, rec, "move", done=True)
    if a.copy is not None:
        rec.volume = a.copy.volume
        record.step(state_dir, rec, "copy")
        ops.podman("volume", "create", "--", a.copy.volume)
        ops.podman(*copy_argv(a.copy))
        record.step(state_dir, rec, "copy", done=True)
    rec.config_created = True
    record.step(state_dir, rec, "config")
    a.config_path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fsutil.atomic_write(a.config_path, a.config_text)
    record.step(state_dir, rec, "config", done=True)
    created, write = generate()
    rec.created = created
    record.step(state_dir, rec, "generate")
    write()
    ops.systemctl("daemon-reload")
    record.step(state_dir, rec, "generate", done=True)
    record.step(state_dir, rec, "start")
    failure = gate()
    if failure:
        raise AdoptError(f"{a.unit} is not healthy: {failure}")
    for unit in rec.dependents:
        ops.systemctl("start", "--", unit)
    record.step(state_dir, rec, "start", done=True)
    record.step(state_dir, rec, "done", done=True)


def _attempt(problems: list[str], action: Callable[[], None]) -> None:
    try:
        action()
    except (PsquadletError, OSError) as exc:
        problems.append(str(exc))


def _remove_created(path: str) -> None:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    if marker.is_generated(text) or p.name.startswith("."):
        p.unlink(missing_ok=True)


def _move(source: Path, dest: Path) -> None:
    shutil.move(str(source), str(dest))


def restore(rec: Record, ops: HostOps, state_dir: Path) -> list[str]:
    """Put the old unit or container back and start it; what could not be done (empty: all
    done). Works from the record alone, whatever step was reached: every action is one that
    is harmless when already done."""
    problems: list[str] = []
    unit = f"{rec.name}.service"
    if rec.begun("generate"):
        _attempt(problems, lambda: ops.systemctl("stop", "--", unit))
        for path in rec.created:  # the watcher's units the new one started, if created now
            if path.endswith((".service", ".timer")) and Path(path).name != unit:
                with contextlib.suppress(PsquadletError):
                    ops.systemctl("stop", "--", Path(path).name)
        for path in rec.created:
            _attempt(problems, functools.partial(_remove_created, path))
    # an unfinished adoption's copy (the folder it came from is untouched); a finished one's
    # volume may hold what the operator configured since: it stays
    if rec.volume and rec.begun("copy") and not rec.finished:
        with contextlib.suppress(PsquadletError):
            ops.podman("volume", "rm", "--force", "--", rec.volume)
    if rec.begun("config") and rec.config_created:
        config = Path(rec.config_path)
        if config.exists():
            keep = record.folder(state_dir, rec.name) / "psquadlet.toml"
            _attempt(problems, lambda: _move(config, keep))
    if rec.shape == "unit" and rec.kept_unit:
        original = Path(rec.unit_path)
        if not original.exists():
            text, mode = _read_unit(Path(rec.kept_unit))
            _attempt(problems, lambda: fsutil.atomic_write(original, text, mode))
    _attempt(problems, lambda: ops.systemctl("daemon-reload"))
    if rec.shape == "unit" and rec.was_enabled:
        _attempt(problems, lambda: ops.systemctl("enable", "--", unit))
    if rec.container_aside and ops.container_running(rec.container_aside) is not None:
        if ops.container_running(rec.container) is not None:
            _attempt(problems, lambda: ops.podman("rm", "--force", "--", rec.container))
        _attempt(problems, lambda: ops.podman("rename", rec.container_aside, rec.container))
    if rec.was_active and not problems:
        if rec.shape == "unit":
            _attempt(problems, lambda: ops.systemctl("start", "--", unit))
        else:
            _attempt(problems, lambda: ops.podman("start", "--", rec.container))
        for dependent in rec.dependents:
            _attempt(problems, functools.partial(ops.systemctl, "start", "--", dependent))
    if not problems:
        _retire(rec, state_dir)
    return problems


def _retire(rec: Record, state_dir: Path) -> None:
    """Keep the undone record (and the copies) beside, so a new adoption can begin."""
    rec.steps.append("undone")
    record.save(state_dir, rec)
    where = record.folder(state_dir, rec.name)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    os.replace(where, where.with_name(f"{rec.name}.undone-{stamp}"))
