"""psquadlet under Python 3.9: a debootstrapped Debian 11 "bullseye" root (Python 3.9.2).

Enterprise Linux 9 runs Python 3.9; the development machine only has 3.11. The root is built
once and cached under CACHE (stamp file written last, so an interrupted build is rebuilt).
Every command runs in a private mount namespace (``unshare --mount``) on an overlay of the
cached root with a per-session upper folder: the cached root is never written, and the
mounts (overlay, /proc, /sys, /dev nodes, pip's folders) vanish with the command's process,
also when a test fails or pytest is killed. Nothing is ever mounted in the host's namespace.

The host's pip settings (config files, PIP_* variables, the local wheel folders and index
they name, the CA bundle) are replicated inside, so pip in the root reaches the same package
sources as pip on the host. Built wheels (pystemd compiles) are kept in a pip cache next to
the root, so only the first session pays for the compile.
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE = Path(os.environ.get("PSQUADLET_TEST_CACHE", "/var/cache/psquadlet-tests"))
MIRROR = os.environ.get("PSQUADLET_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Where bullseye goes once the mirrors drop it (first one that carries the suite wins).
FALLBACK_MIRRORS = ("http://archive.debian.org/debian",)
SUITE = "bullseye"  # Debian 11: python3 is 3.9.2, the oldest Python psquadlet supports
ROOT = CACHE / "py39-root"
PIP_CACHE = CACHE / "py39-pip-cache"
DEB_CACHE = CACHE / "debs-bullseye"
# python3-venv brings pip (20.3.4) through ensurepip; the compiler and headers are for
# pystemd, which PyPI has only as source (an EL9 operator needs gcc and systemd-devel too).
PACKAGES = (
    "python3",
    "python3-venv",
    "python3-dev",
    "gcc",
    "libc6-dev",
    "libsystemd-dev",
    "pkg-config",
)
STAMP_NAME = ".psquadlet-py39-stamp"
PROVISION_ID = "py39-v3"
# A venv with the newest pip that runs on 3.9 (as an operator would upgrade it first:
# bullseye's 20.3.4, like EL9's 21.2, parses PyPI's HTML pages slowly), made once in the
# cached root: every session's overlay starts from it pristine, and psquadlet with its
# dependencies is pip-installed into it per session.
VENV = "/opt/py39-venv"
INNER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEV_NODES = ("null", "zero", "full", "random", "urandom")
PIP_CONFIG_FILES = (
    "/etc/pip.conf",
    "/etc/xdg/pip/pip.conf",
    "~/.config/pip/pip.conf",
    "~/.pip/pip.conf",
)


class Py39Error(RuntimeError):
    """The Python 3.9 root could not be built or a command could not be started in it."""


def _log(msg: str) -> None:
    print(f"[py39] {msg}", file=sys.stderr, flush=True)


def _stamp() -> str:
    # Not the mirror: the same release from another mirror is the same root.
    text = "\n".join([SUITE, PROVISION_ID, *sorted(PACKAGES)])
    return hashlib.sha256(text.encode()).hexdigest()


def _rmtree(path: Path) -> None:
    # Nothing is mounted below our folders in the host namespace; --one-file-system is a
    # second guard should that ever change.
    if path.exists() or path.is_symlink():
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Two pytest sessions on one machine must not build the root at the same time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _is_built(root: Path) -> bool:
    stamp = root / STAMP_NAME
    return stamp.is_file() and stamp.read_text().strip() == _stamp()


def build_root(root: Path = ROOT) -> Path:
    """The cached bullseye root with Python 3.9 (built when missing, incomplete or outdated)."""
    if _is_built(root):
        return root
    with _lock(root.with_name(root.name + ".lock")):
        if _is_built(root):  # another session built it while we waited
            return root
        _debootstrap(root)
    return root


def _pick_mirror() -> str:
    tried = []
    for mirror in dict.fromkeys((MIRROR, *FALLBACK_MIRRORS)):
        url = f"{mirror}/dists/{SUITE}/Release"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=30):
                return mirror
        except (OSError, ValueError) as e:  # URLError, HTTPError and timeouts are OSErrors
            tried.append(f"{url}: {e}")
    raise Py39Error(
        f"no Debian mirror carries {SUITE} (Python 3.9); set PSQUADLET_DEBIAN_MIRROR to one "
        "that does. Tried:\n  " + "\n  ".join(tried)
    )


def _debootstrap(root: Path) -> None:
    tmp = root.with_name(root.name + ".building")
    log_path = root.with_name(root.name + ".debootstrap.log")
    mirror = _pick_mirror()
    _log(f"debootstrapping {SUITE} from {mirror} into {root} (cached for later runs)")
    started = time.monotonic()
    _rmtree(tmp)
    _rmtree(root)
    _rmtree(PIP_CACHE)  # wheels built against the old root go with it
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--cache-dir={DEB_CACHE}",
        "--include=" + ",".join(PACKAGES),
        SUITE,
        str(tmp),
        mirror,
    ]
    with open(log_path, "wb") as log:
        res = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if res.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise Py39Error(f"{shlex.join(argv)} failed ({res.returncode}). Log {log_path}:\n{tail}")
    for deb in (tmp / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    # debootstrap can leave /proc or /sys of the build mounted when it is interrupted; it
    # unmounts them on success. Make sure before the root is used as an overlay layer.
    with open("/proc/self/mountinfo") as f:
        if any(f" {tmp}/" in line for line in f):
            raise Py39Error(f"debootstrap left mounts below {tmp}")
    version = subprocess.run(
        ["chroot", str(tmp), "python3", "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if version.stdout.strip() != "(3, 9)":
        raise Py39Error(
            f"the {SUITE} root's python3 is not 3.9: {version.stdout.strip()!r} "
            f"{version.stderr.strip()}"
        )
    venv = subprocess.run(
        ["chroot", str(tmp), "python3", "-m", "venv", VENV],
        capture_output=True,
        text=True,
        check=False,
    )
    if venv.returncode != 0:
        raise Py39Error(f"python3 -m venv {VENV} failed in the {SUITE} root:\n{venv.stderr}")
    # pip from PyPI with the host's pip settings: a session over the new root whose venv
    # folder is the root's own (bound read-write), so the upgrade lands in the root.
    scratch = tmp.with_name(tmp.name + ".provision")
    _rmtree(scratch)
    try:
        session = Py39Session(tmp, scratch, rw_binds=[(tmp / VENV.lstrip("/"), VENV)])
        pip = [f"{VENV}/bin/python", "-m", "pip", "install", "--no-input", "--upgrade", "pip"]
        result = session.run(pip, timeout=600)
    finally:
        _rmtree(scratch)
    if result.returncode != 0:
        raise Py39Error(f"upgrading pip in the {SUITE} root failed:\n{result.stderr[-3000:]}")
    (tmp / STAMP_NAME).write_text(_stamp() + "\n")
    tmp.rename(root)
    _log(f"{SUITE} root ready in {time.monotonic() - started:.0f}s")


def _pip_paths(env: Mapping[str, str]) -> tuple[list[Path], list[Path]]:
    """The host's pip config files, and the local files/folders their settings name."""
    home = Path(env.get("HOME", "/root"))
    configs = [Path(p.replace("~", str(home), 1)) for p in PIP_CONFIG_FILES]
    if env.get("PIP_CONFIG_FILE"):
        configs.append(Path(env["PIP_CONFIG_FILE"]))
    configs = [c for c in configs if c.is_file()]
    values = [v for k, v in env.items() if k.startswith("PIP_")]
    for conf in configs:
        parser = configparser.ConfigParser(interpolation=None)
        with contextlib.suppress(configparser.Error):
            parser.read(conf)
            values += [v for s in parser.sections() for v in parser[s].values()]
    referenced: list[Path] = []
    for value in values:
        for word in value.split():
            word = word.removeprefix("file://")
            path = Path(word)
            if path.is_absolute() and path.exists():
                # A local index links its files relative to the index root (../../files/).
                referenced.append(path.parent if path.name == "simple" else path)
    return configs, sorted(set(referenced))


def stop(proc: subprocess.Popen[Any]) -> None:
    """Kill a command started inside and everything it started (its own process group)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Result:
        if self.returncode != 0:
            raise AssertionError(
                f"{shlex.join(self.argv)} exited {self.returncode} under Python 3.9\n"
                f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"
            )
        return self


class Py39Session:
    """Commands on a writable overlay of the cached root; the overlay's changes live in
    `scratch` for the session (remove `scratch` to forget them).

    Commands of one session must run one after the other (they mount the same upper layer);
    to run a command in the background, run it in a `fork`.
    """

    def __init__(
        self,
        root: Path,
        scratch: Path,
        env: Mapping[str, str] | None = None,
        rw_binds: Sequence[tuple[Path, str]] = (),
    ) -> None:
        self.root = root
        self.lowers = [root]  # top first
        self.scratch = scratch
        self.upper = scratch / "upper"
        self.work = scratch / "work"
        self.merged = scratch / "merged"
        for d in (self.upper, self.work, self.merged):
            d.mkdir(parents=True, exist_ok=True)
        host_env = dict(os.environ if env is None else env)
        self.env = {
            "HOME": "/root",
            "PATH": INNER_PATH,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            **{k: v for k, v in host_env.items() if k.startswith("PIP_")},
        }
        # (host folder, inner path, read-only)
        self.binds: list[tuple[Path, str, bool]] = [(h, i, False) for h, i in rw_binds]
        self.binds.append((PIP_CACHE, "/root/.cache/pip", False))
        self._replicate_host(host_env)

    def fork(self, scratch: Path) -> Py39Session:
        """A session that starts from this one's files as they are now (its upper layer
        becomes a read-only lower layer) and writes to its own: the two can run at the same
        time. Later changes here must not touch files the fork uses."""
        child = Py39Session(self.root, scratch, env={})
        child.lowers = [self.upper, *self.lowers]
        child.env = dict(self.env)
        child.binds = list(self.binds)
        return child

    def path(self, inner: str) -> Path:
        """Where a file written now appears at `inner` inside (the overlay's upper layer)."""
        return self.upper / inner.lstrip("/")

    def write(self, inner: str, data: bytes | str) -> None:
        target = self.path(inner)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        target.write_bytes(data)

    def _replicate_host(self, host_env: Mapping[str, str]) -> None:
        for name in ("/etc/resolv.conf", "/etc/hosts"):
            if Path(name).exists():
                self.write(name, Path(name).read_bytes())
        configs, referenced = _pip_paths(host_env)
        host_home = Path(host_env.get("HOME", "/root"))
        for conf in configs:
            inner = str(conf)
            if conf.is_relative_to(host_home):
                inner = "/root/" + str(conf.relative_to(host_home))
            self.write(inner, conf.read_bytes())
        for ref in referenced:
            if ref.is_file():
                self.write(str(ref), ref.read_bytes())
            elif ref.is_dir():
                self.path(str(ref)).mkdir(parents=True, exist_ok=True)
                self.binds.append((ref, str(ref), True))
        PIP_CACHE.mkdir(parents=True, exist_ok=True)
        self.path("/root/.cache/pip").mkdir(parents=True, exist_ok=True)
        for node in DEV_NODES:
            self.path(f"/dev/{node}").parent.mkdir(parents=True, exist_ok=True)

    def _mount_script(self) -> str:
        m = shlex.quote(str(self.merged))
        lines = [
            "set -eu",
            "mount -t overlay overlay -o "
            + shlex.quote(
                f"lowerdir={':'.join(map(str, self.lowers))},upperdir={self.upper},"
                f"workdir={self.work},index=off"
            )
            + f" {m}",
            f"mount -t proc proc {m}/proc",
            f"mount -t sysfs -o ro sysfs {m}/sys",
        ]
        for node in DEV_NODES:
            lines.append(f"[ -e {m}/dev/{node} ] || : > {m}/dev/{node}")
            lines.append(f"mount --bind /dev/{node} {m}/dev/{node}")
        # POSIX semaphores (multiprocessing locks and events) live in /dev/shm.
        lines.append(f"mkdir -p {m}/dev/shm")
        lines.append(f"mount -t tmpfs -o mode=1777,size=64m shm {m}/dev/shm")
        for host, inner, read_only in self.binds:
            target = f"{m}{shlex.quote(inner)}"
            lines.append(f"mount --bind {shlex.quote(str(host))} {target}")
            if read_only:
                lines.append(f"mount -o remount,bind,ro {target}")
        env = [f"{k}={v}" for k, v in sorted(self.env.items())]
        enter = shlex.quote('cd "$0" && exec "$@"')
        lines.append(f'exec chroot {m} /usr/bin/env -i {shlex.join(env)} /bin/sh -c {enter} "$@"')
        return "\n".join(lines)

    def _command(self, argv: Sequence[str], cwd: str) -> list[str]:
        return [
            # Dies with the test process even when pytest itself is killed (the command runs
            # in a session of its own, so no terminal signal would reach it).
            "setpriv",
            "--pdeathsig",
            "KILL",
            "--",
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            self._mount_script(),
            "sh",
            cwd,
            *argv,
        ]

    def run(
        self,
        argv: Sequence[str],
        cwd: str = "/",
        stdin: str | None = None,
        timeout: float = 300.0,
    ) -> Result:
        """Run `argv` inside (PATH, HOME=/root, the host's PIP_* settings), as root."""
        proc = subprocess.Popen(
            self._command(argv, cwd),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # pip's build helpers are in the group: kill them too
        )
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except BaseException:
            stop(proc)
            raise
        return Result(tuple(argv), proc.returncode, out, err)

    def start(self, argv: Sequence[str], log: Path, cwd: str = "/") -> subprocess.Popen[bytes]:
        """Start `argv` inside in the background, stdout and stderr to `log` (a file, so a
        long output never blocks it). End it with `stop`."""
        with open(log, "wb") as out:
            return subprocess.Popen(
                self._command(argv, cwd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def copy_tree(self, repo: Path, inner: str) -> None:
        """The working tree as git sees it (tracked and untracked, not ignored: no .venv);
        without git (a tree unpacked from an archive), every file but venvs and caches."""
        dest = self.path(inner)
        _rmtree(dest)
        for rel in _tree_files(repo):
            src = repo / rel
            if src.is_file():  # a file deleted in the working tree is still listed by git
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)


_NOT_SOURCE = {
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
}


def _tree_files(repo: Path) -> list[str]:
    git = ["git", "-c", "core.quotepath=off", "-C", str(repo), "ls-files", "-z", "-co"]
    try:
        res = subprocess.run([*git, "--exclude-standard"], capture_output=True, check=False)
    except OSError:  # no git at all
        res = None
    if res is not None and res.returncode == 0:
        return [raw.decode() for raw in res.stdout.split(b"\0") if raw]
    files = []
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = [d for d in dirnames if d not in _NOT_SOURCE and not d.endswith(".egg-info")]
        rel = Path(dirpath).relative_to(repo)
        files += [str(rel / f) for f in filenames if not f.endswith((".pyc", ".pyo"))]
    return files
