"""The record of one adoption: what was there before, and how far the switch-over got.

``STATE_DIR/adopted/NAME/record.json`` is written (atomically) before each step and again
after it, so that ``psquadlet adopt --undo NAME`` can put the old unit back after a failure,
a kill or a power cut at any point. The old unit's file is copied into the same folder
(``NAME.service``) before the original is removed: outside systemd's search path, so it
never loads, and kept after a successful adoption for a later ``--undo``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psquadlet import fsutil
from psquadlet.errors import PsquadletError

VERSION = 1
RECORD = "record.json"
MAX_RECORD_BYTES = 1 << 20

# Steps, in order. A step is recorded as begun ("stop") before it is done and as done
# ("stop:done") after; undo treats a begun step as possibly done.
STEPS = ("keep", "stop", "move", "copy", "config", "generate", "start", "done")


class AdoptError(PsquadletError):
    """An adoption could not be done or undone (exit 1); the message says what state the
    host is in."""


@dataclass
class Record:
    name: str
    """The unit (``NAME.service``) and the configuration's table."""
    shape: str
    """"unit": an installed unit file; "container": a container without one."""
    config_path: str
    unit_path: str = ""
    """Where the old unit file was (shape "unit")."""
    kept_unit: str = ""
    """The copy of it in the record's folder."""
    was_enabled: bool = False
    was_active: bool = False
    container: str = ""
    """The old container (shape "container") and the name it is kept under meanwhile."""
    container_aside: str = ""
    dependents: list[str] = field(default_factory=list)
    """Active units that require the old one (systemd stops them with it)."""
    created: list[str] = field(default_factory=list)
    """Files ``generate`` created for the adoption (removed again by an undo)."""
    config_created: bool = False
    volume: str = ""
    """``--into-volumes``: the named volume the adoption created and filled."""
    steps: list[str] = field(default_factory=list)

    def begun(self, step: str) -> bool:
        return step in self.steps or f"{step}:done" in self.steps

    @property
    def finished(self) -> bool:
        return "done:done" in self.steps


def folder(state_dir: Path, name: str) -> Path:
    return state_dir / "adopted" / name


def load(state_dir: Path, name: str) -> Record | None:
    path = folder(state_dir, name) / RECORD
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_RECORD_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AdoptError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data: Any = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_RECORD_BYTES else None
    except (ValueError, RecursionError):
        data = None
    fields = {f.name: f.type for f in dataclasses.fields(Record)}
    if (
        not isinstance(data, dict)
        or data.get("version") != VERSION
        or not isinstance(data.get("record"), dict)
    ):
        raise AdoptError(f"{path}: not an adoption record of version {VERSION}")
    values = data["record"]
    for key, value in values.items():
        want = fields.get(key)
        ok = (
            (want == "str" and isinstance(value, str))
            or (want == "bool" and isinstance(value, bool))
            or (
                want == "list[str]"
                and isinstance(value, list)
                and all(isinstance(v, str) for v in value)
            )
        )
        if not ok:
            raise AdoptError(f"{path}: {key}: not a value this record can hold")
    try:
        return Record(**values)
    except TypeError as exc:
        raise AdoptError(f"{path}: {exc}") from None


def save(state_dir: Path, record: Record) -> None:
    where = folder(state_dir, record.name)
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = json.dumps({"version": VERSION, "record": dataclasses.asdict(record)}, indent=1)
        fsutil.atomic_write(where / RECORD, text + "\n")
    except OSError as exc:
        raise AdoptError(
            f"{where}: cannot write the adoption record: {exc.strerror or exc}"
        ) from None


def step(state_dir: Path, record: Record, name: str, done: bool = False) -> None:
    """Record that ``name`` begins (or is done), before (after) doing it."""
    record.steps.append(f"{name}:done" if done else name)
    save(state_dir, record)
