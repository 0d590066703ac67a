"""Compare the files psquadlet would write with the disk, then apply them all or none.

Computing the plan touches nothing, so ``--dry-run`` and ``--diff`` show exactly what
``generate`` would do. A plan spans every folder of one run (the unit folder and the host-file
folders of extensions). Applying refuses as a whole when any file is in the way: one psquadlet
did not generate (no marker line), one a configuration generated and someone edited since, or
a new unit that would shadow an installed systemd unit. Half-applied plans leave a unit set
that no configuration describes.

Which files a configuration wrote is recorded per folder in a manifest
(``.psquadlet-manifest.json``: file name -> source and SHA-256 of what was written). A file no
longer configured is removed only when this configuration wrote it and it is unchanged since;
files of other configurations sharing the folder are left alone. In a folder without a
manifest (written by an older psquadlet), a file is taken to be this configuration's when its
marker line names the same source.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psquadlet import fsutil, watchunits
from psquadlet.errors import PsquadletError, RefusedError
from psquadlet.marker import is_generated, same_source

CREATE = "create"
CHANGE = "change"
UNCHANGED = "unchanged"
REMOVE = "remove"
REFUSED = "refused"

# What the report says for each kind, once applied.
PAST = {
    CREATE: "created",
    CHANGE: "changed",
    UNCHANGED: "unchanged",
    REMOVE: "removed",
    REFUSED: "refused",
}

# What a file is (the JSON output's "kind").
UNIT = "unit"
VOLUME = "volume"
HOST_FILE = "host-file"
DROP_IN = "drop-in"

MANIFEST = ".psquadlet-manifest.json"

# psquadlet's own units: installed by the package, never refused as "shadowing" anything.
OWN_UNITS = watchunits.OWN_UNITS

SYSTEM_UNIT_PATH = (
    Path("/etc/systemd/system"),
    Path("/run/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)
USER_UNIT_PATH = (
    Path("~/.config/systemd/user"),
    Path("/etc/systemd/user"),
    Path("/run/systemd/user"),
    Path("/usr/local/lib/systemd/user"),
    Path("/usr/lib/systemd/user"),
    Path("/lib/systemd/user"),
)


def unit_search_path(user: bool) -> tuple[Path, ...]:
    """Where systemd looks for installed units of the system (or the user's) manager."""
    return tuple(p.expanduser() for p in (USER_UNIT_PATH if user else SYSTEM_UNIT_PATH))


@dataclass(frozen=True)
class Target:
    """A file the run wants on disk."""

    path: Path
    """Where it goes: inside one of the plan's folders."""
    text: str
    kind: str = UNIT
    """UNIT, VOLUME, HOST_FILE or DROP_IN (what ``--json`` reports)."""


@dataclass(frozen=True)
class Action:
    """One file: what happens to it and why."""

    kind: str
    path: Path
    new: str | None = None
    """The content to write (None for remove and refused)."""
    old: str | None = None
    """The content on disk (None when there is no file)."""
    reason: str = ""
    file_kind: str = UNIT
    """The target's kind (UNIT for a file only found on disk)."""

    def diff(self) -> str:
        """A unified diff from the disk to the plan ("" when nothing changes)."""
        if self.kind not in (CREATE, CHANGE, REMOVE):
            return ""
        before = (self.old or "").splitlines(keepends=True)
        after = (self.new or "").splitlines(keepends=True)
        old_name = "/dev/null" if self.old is None else f"a{self.path}"
        new_name = "/dev/null" if self.kind == REMOVE else f"b{self.path}"
        return "".join(difflib.unified_diff(before, after, old_name, new_name))


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    folders: tuple[Path, ...] = ()
    manifests: Mapping[Path, str] = field(default_factory=dict)
    """Manifest files whose content changes (written with the files, not reported)."""

    @property
    def refused(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind == REFUSED)

    @property
    def changes(self) -> tuple[Action, ...]:
        """The actions that write or remove a file."""
        return tuple(a for a in self.actions if a.kind in (CREATE, CHANGE, REMOVE))

    def check(self) -> None:
        """Raise RefusedError naming every file in the way (nothing has been written)."""
        if not self.refused:
            return
        lines = [f"{a.path}: {a.reason}" for a in self.refused]
        raise RefusedError(
            "refusing to touch these files (nothing was written; move them away or use "
            "--force):\n  " + "\n  ".join(lines)
        )


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _load_manifest(folder: Path) -> dict[str, dict[str, str]] | None:
    """name -> {"source", "sha256"}; None when the folder has none (or it is unreadable)."""
    try:
        doc: Any = json.loads((folder / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict):
        return None
    return {
        name: entry
        for name, entry in files.items()
        if isinstance(entry, dict)
        and isinstance(entry.get("source"), str)
        and isinstance(entry.get("sha256"), str)
    }


def systemd_unit_name(filename: str) -> str:
    """The unit a file in the output folder becomes (Quadlet: NAME.container -> NAME.service)."""
    stem, _, suffix = filename.rpartition(".")
    if suffix == "container":
        return f"{stem}.service"
    if suffix == "volume":
        return f"{stem}-volume.service"
    return filename


def _shadowed(
    filename: str, search_path: Iterable[Path], outdir: Path, replacing: Collection[Path] = ()
) -> Path | None:
    """An installed unit (not psquadlet's) that a new file named ``filename`` would shadow;
    ``replacing``: installed units the run moves aside first (``psquadlet adopt``)."""
    name = systemd_unit_name(filename)
    if name in OWN_UNITS:
        return None
    for folder in search_path:
        path = folder / name
        if folder == outdir or not os.path.lexists(path) or path in replacing:
            continue
        text = _read(path) if path.is_file() else None
        if text is None or not is_generated(text):
            return path
    return None


class _Planner:
    def __init__(
        self,
        source: str,
        force: bool,
        search_path: Sequence[Path],
        owned: Collection[Path],
        replacing: Collection[Path] = (),
    ) -> None:
        self.replacing = replacing
        self.source = source
        self.force = force
        self.search_path = search_path
        self.owned = owned
        self.actions: list[Action] = []

    def want(self, target: Target, folder: Path) -> None:
        path = target.path
        add = self.actions.append
        if path.is_symlink() or (path.exists() and not path.is_file()):
            add(
                Action(
                    REFUSED, path, reason="exists and is not a regular file", file_kind=target.kind
                )
            )
            return
        old = _read(path)
        if old is None:
            shadow = _shadowed(path.name, self.search_path, folder, self.replacing)
            if shadow is not None and not self.force and target.kind in (UNIT, VOLUME):
                reason = (
                    f"would shadow the installed unit {shadow}: rename the container "
                    "(or use --force)"
                )
                add(Action(REFUSED, path, new=target.text, reason=reason, file_kind=target.kind))
            else:
                add(Action(CREATE, path, new=target.text, file_kind=target.kind))
        elif old == target.text:
            add(Action(UNCHANGED, path, new=target.text, old=old, file_kind=target.kind))
        elif is_generated(old) or self.force or folder in self.owned:
            add(Action(CHANGE, path, new=target.text, old=old, file_kind=target.kind))
        else:
            reason = "not generated by psquadlet (no marker line)"
            add(Action(REFUSED, path, old=old, reason=reason, file_kind=target.kind))

    def stale(
        self, folder: Path, wanted: set[str], manifest: dict[str, dict[str, str]] | None
    ) -> None:
        """Files this configuration wrote into ``folder`` that it no longer produces."""
        if not folder.is_dir():
            return
        for path in sorted(folder.iterdir()):
            if path.name in wanted or path.name.startswith(".") or path.is_symlink():
                continue
            old = _read(path) if path.is_file() else None
            verdict = None if old is None else self._verdict(path.name, old, manifest)
            if verdict is not None:
                kind = HOST_FILE if folder in self.owned else unit_kind(path.name)
                self.actions.append(
                    Action(verdict[0], path, old=old, reason=verdict[1], file_kind=kind)
                )

    def _verdict(
        self, name: str, old: str, manifest: dict[str, dict[str, str]] | None
    ) -> tuple[str, str] | None:
        """(REMOVE or REFUSED, reason) for a file no longer produced; None: not this run's."""
        if manifest is None:  # written by an older psquadlet: the marker decides
            mine = same_source(old, self.source)
            return (REMOVE, "no longer configured") if mine else None
        entry = manifest.get(name)
        if entry is None or entry["source"] != self.source:
            return None  # another configuration's, or never psquadlet's (e.g. a copy)
        if entry["sha256"] == _digest(old) or self.force:
            return (REMOVE, "no longer configured")
        return (
            REFUSED,
            "no longer configured, but edited since psquadlet wrote it "
            "(remove it yourself or use --force)",
        )


def unit_kind(filename: str) -> str:
    """The JSON "kind" of a file in the unit folder."""
    is_volume = filename.endswith((".volume", "-volume.service"))
    return VOLUME if is_volume else UNIT


def _manifest_text(
    old: dict[str, dict[str, str]] | None, source: str, targets: Sequence[Target], folder: Path
) -> str:
    """The folder's manifest after this run: other sources' live entries, then ours."""
    files = {
        name: entry
        for name, entry in (old or {}).items()
        if entry["source"] != source and (folder / name).is_file()
    }
    files.update({t.path.name: {"source": source, "sha256": _digest(t.text)} for t in targets})
    return json.dumps({"version": 1, "files": files}, indent=1, sort_keys=True) + "\n"


def compute_plan(
    targets: Sequence[Target],
    folders: Sequence[Path],
    source: str,
    *,
    force: bool = False,
    search_path: Sequence[Path] = (),
    owned: Collection[Path] = (),
    replacing: Collection[Path] = (),
) -> Plan:
    """What writing ``targets`` (each inside one of ``folders``) means; touches nothing.

    ``source`` is the configuration the run reads (it decides which files are this run's).
    ``search_path``: folders of installed systemd units a new unit must not shadow.
    """
    planner = _Planner(source, force, search_path, owned, replacing)
    manifests: dict[Path, str] = {}
    for folder in folders:
        mine = sorted((t for t in targets if t.path.parent == folder), key=lambda t: t.path)
        manifest = _load_manifest(folder)
        for target in mine:
            planner.want(target, folder)
        planner.stale(folder, {t.path.name for t in mine}, manifest)
        if not mine and manifest is None:
            continue
        text = _manifest_text(manifest, source, mine, folder)
        if _read(folder / MANIFEST) != text:
            manifests[folder / MANIFEST] = text
    return Plan(tuple(planner.actions), tuple(folders), manifests)


def _verify(plan: Plan) -> None:
    """Refuse when a file changed on disk since the plan was computed."""
    moved = []
    for action in plan.changes:
        now = _read(action.path)
        gone = action.kind == REMOVE and now is None  # already removed: fine
        if now != action.old and not gone:
            moved.append(str(action.path))
    if moved:
        raise RefusedError(
            "files changed while the plan was made (nothing was written; run again): "
            + ", ".join(moved)
        )


def apply_plan(plan: Plan) -> tuple[Action, ...]:
    """Carry out the plan, all or nothing; return the actions that changed the disk.

    Refuses as a whole (RefusedError, nothing written) when any action is refused or a file
    changed since planning. Removes temporary files a killed run left in the plan's folders.
    Hold ``fsutil.folder_lock`` around planning and applying when runs may be concurrent.
    An OSError becomes a PsquadletError saying whether anything was written.
    """
    plan.check()
    _verify(plan)
    changes = plan.changes
    writes = {a.path: a.new or "" for a in changes if a.kind != REMOVE}
    writes.update(plan.manifests)
    removes = [a.path for a in changes if a.kind == REMOVE]
    try:
        for folder in dict.fromkeys(p.parent for p in writes):
            folder.mkdir(parents=True, exist_ok=True)
        stale = [t for folder in plan.folders for t in fsutil.stale_temps(folder)]
        fsutil.replace_all(writes, (*removes, *stale))
    except fsutil.PartialWriteError as exc:
        raise PsquadletError(
            f"cannot write {exc.filename}: {exc.strerror}; some files were already replaced, "
            "run 'psquadlet generate' again once this is fixed"
        ) from None
    except OSError as exc:
        raise PsquadletError(
            f"cannot write {exc.filename or ''}: {exc.strerror or exc}; nothing was written"
        ) from None
    return changes
