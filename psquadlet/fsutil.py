"""Crash-safe file writes.

systemd reads unit files at ``daemon-reload`` and at boot: a unit that is half written (power
loss, full disk) could leave the testpoint without a service. Every write goes to a temporary
file in the same folder, is flushed to disk, and then renamed over the target, so that the
target is always either the old or the new content.

A set of files (one ``generate`` run) is written with ``replace_all``: every temporary file is
written first, and only when all of them are on disk are they renamed into place, so a full
disk leaves the old set, not a mix. ``folder_lock`` serialises runs on one folder, and
``remove_stale_temps`` removes what a killed run left behind (only this module's temp names).

Root writes in folders others may reach (a state, outbox or metrics folder), so nothing here
follows a symbolic link an attacker could plant: temporary files are created with
``O_CREAT|O_EXCL|O_NOFOLLOW`` (``mkstemp``) and get their mode on the open descriptor before
any content; lock files are opened with ``O_NOFOLLOW`` and must be regular files
(``open_lock``); ``folder_problem`` is the rule for a folder root may write in at all.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from psquadlet.errors import UnsafeFolderError


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
    # mkstemp: O_CREAT|O_EXCL|O_NOFOLLOW, 0600. The mode is set on the descriptor, never by
    # path: a name swapped for a symbolic link after the write must not get it.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
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
    fd = open_lock(folder / LOCK_NAME, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def open_lock(path: Path | str, mode: int = 0o600) -> int:
    """A descriptor for the lock file ``path`` (created with ``mode`` when missing).

    Never follows a symbolic link (a planted ``lock -> /etc/passwd`` would have root truncate
    its target) and never hangs on a FIFO: OSError (ELOOP, or EINVAL "not a regular file").
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(exc.errno, "is a symbolic link", str(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd


def folder_problem(folder: Path | str, parents: bool = True, uid: int | None = None) -> str:
    """Why this user (default: the effective one) should not keep files in ``folder``, or "".

    OpenSSH's StrictModes rule: the folder and, with ``parents``, every folder above it are
    owned by root or the user and writable by nobody else; a parent writable by others is
    accepted only with the sticky bit (``/tmp``: others cannot rename what is not theirs).
    Folders not created yet are skipped (psquadlet creates them, as the user). Symbolic links
    on the way are resolved first and the real path is checked.
    """
    uid = os.geteuid() if uid is None else uid
    real = Path(os.path.realpath(folder))
    chain = (real, *real.parents) if parents else (real,)
    for index, path in enumerate(chain):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"cannot inspect {path}: {exc.strerror or exc}"
        if not stat.S_ISDIR(st.st_mode):
            return f"{path} is not a folder"
        if st.st_uid not in (0, uid):
            return f"{path} belongs to uid {st.st_uid}, not to root or uid {uid}"
        others = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if others and (index == 0 or not st.st_mode & stat.S_ISVTX):
            who = (
                "group and others"
                if others == stat.S_IWGRP | stat.S_IWOTH
                else ("its group" if others == stat.S_IWGRP else "others")
            )
            return f"{path} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    return ""


def unwritable(folder: Path | str, create: bool = True) -> str:
    """Why this process could not write files in ``folder`` (or, with ``create``, create it
    first), or ""."""
    path = Path(os.path.abspath(folder))
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    if existing != path and not create:
        return f"{path} does not exist"
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable" + ("" if existing == path else " (to create it)")
    return ""


def safe_folder(
    folder: Path | str, what: str, parents: bool = True, mode: int | None = 0o755
) -> Path:
    """``folder``, created with ``mode`` when missing (None: never created; OSError when it
    cannot be); UnsafeFolderError when ``folder_problem`` finds one."""
    path = Path(folder)
    if mode is not None:
        path.mkdir(mode=mode, parents=True, exist_ok=True)  # OSError: the caller says what for
    problem = folder_problem(path, parents)
    if problem:
        raise UnsafeFolderError(
            f"refusing the {what} {path}: {problem}; others could plant links or swap files "
            "there (make it and the folders above it owned by root or this user and not "
            "writable by anyone else: chown, chmod go-w)"
        )
    return path


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
