"""Crash-safe file writes.

systemd reads unit files at ``daemon-reload`` and at boot: a unit that is half written (power
loss, full disk) could leave the testpoint without a service. Every write goes to a temporary
file in the same folder, is flushed to disk, and then renamed over the target, so that the
target is always either the old or the new content.

A set of files (one ``generate`` run) is written with ``replace_all``: every temporary file is
written first, and only when all of them are on disk are they renamed into place, so a full
disk leaves the old set, not a mix. ``folder_lock`` serialises runs on one folder, and
``remove_stale_temps`` removes what a killed run left behind (only this module's temp names).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on folders
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


LOCK_NAME = ".psquadlet.lock"


class PartialWriteError(OSError):
    """A rename failed after others succeeded: some targets already hold their new content."""


# mkstemp(prefix=".NAME.", suffix=".tmp") names: "." NAME "." 8 random characters ".tmp".
_TEMP = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")


def _write_temp(path: Path, text: str, mode: int) -> Path:
    """``text`` in a synced temporary file next to ``path`` (removed again on failure)."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` atomically (temp file, fsync, rename, fsync folder)."""
    replace_all({path: text}, (), mode)


def replace_all(
    writes: Mapping[Path, str], removes: Sequence[Path] = (), mode: int = 0o644
) -> None:
    """Write every file of ``writes`` and remove ``removes``, as one step as far as can be.

    All temporary files are written (and synced) before the first rename: when one fails (full
    disk, read-only folder) the others are removed and no target has changed. Renames within a
    folder do not fail for lack of space. Removals come last and tolerate a file already gone.
    Raises OSError.
    """
    pending: list[tuple[Path, Path]] = []  # (temporary file, target) not yet renamed
    try:
        for path, text in writes.items():
            pending.append((_write_temp(path, text, mode), path))
        renamed = 0
        while pending:
            try:
                os.replace(*pending[0])
            except OSError as exc:
                if not renamed:
                    raise
                raise PartialWriteError(exc.errno, exc.strerror, str(pending[0][1])) from exc
            pending.pop(0)
            renamed += 1
    except BaseException:
        for tmp, _ in pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    for path in removes:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for folder in dict.fromkeys(p.parent for p in (*writes, *removes)):
        _fsync_dir(folder)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (a ``.psquadlet.lock`` file in it, created with the
    folder when missing); waits for another holder to finish."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def stale_temps(folder: Path) -> tuple[Path, ...]:
    """Temporary files this module names, left in ``folder`` by a run that was killed.

    Only call while holding ``folder_lock``: a live run's temp files look the same.
    """
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return ()
    return tuple(folder / n for n in names if _TEMP.fullmatch(n) and (folder / n).is_file())


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write only when the content differs; True when the file was written."""
    if read_text(path) == text:
        return False
    atomic_write(path, text, mode)
    return True


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def remove(path: Path) -> None:
    """Remove a file (already gone is fine) and make the removal durable."""
    replace_all({}, (path,))
