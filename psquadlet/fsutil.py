"""Crash-safe file writes.

systemd reads unit files at ``daemon-reload`` and at boot: a unit that is half written (power
loss, full disk) could leave the testpoint without a service. Every write goes to a temporary
file in the same folder, is flushed to disk, and then renamed over the target, so that the
target is always either the old or the new content.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on folders
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` atomically (temp file, fsync, rename, fsync folder)."""
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(folder)


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
    """Remove a file and make the removal durable."""
    path.unlink()
    _fsync_dir(path.parent)
