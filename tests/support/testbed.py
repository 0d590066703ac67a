"""The e2e test bed: a Debian 13 root booted with systemd-nspawn, Podman 5 + Quadlet inside.

The nspawn flags, the containers.conf settings and the D-Bus/Podman socket paths used here are
the ones that were found to work on this kind of machine (hybrid cgroups, no systemd as PID 1
on the host). The debootstrapped root is cached under CACHE (expensive: ~1.5 min, ~500 MB) and is
the read-only lower layer of an overlayfs per run, so every run starts from a clean system.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

CACHE = Path(os.environ.get("PSQUADLET_TEST_CACHE", "/var/cache/psquadlet-tests"))
MIRROR = os.environ.get("PSQUADLET_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "trixie"
DEB_CACHE = CACHE / "debs"

# What an operator's trixie host has: systemd, podman 5 (with Quadlet), and psquadlet's
# dependencies from Debian (psquadlet itself goes into a venv with --system-site-packages).
TESTBED_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "podman",
    "runc",
    "iproute2",
    "procps",
    "python3",
    "python3-venv",
    "python3-setuptools",
    "python3-click",
    "python3-podman",
    "python3-pystemd",
    "python3-yaml",
)
STAMP_NAME = ".psquadlet-testbed-stamp"


def _stamp(packages: tuple[str, ...], extra: str = "", suite: str = SUITE) -> str:
    text = "\n".join([suite, MIRROR, *sorted(packages), extra])
    return hashlib.sha256(text.encode()).hexdigest()


def _log(msg: str) -> None:
    print(f"[testbed] {msg}", file=sys.stderr, flush=True)


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` (host mount namespace), deepest first."""
    prefix = str(path.resolve())
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == prefix or mp.startswith(prefix + "/"):
                points.append(mp)
    return sorted(points, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """Remove a scratch tree safely: unmount what is mounted inside first, never cross mounts."""
    if not path.exists():
        return
    for mp in _mounts_under(path):
        subprocess.run(["umount", "-l", mp], check=False, capture_output=True)
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def debootstrap(
    root: Path,
    packages: tuple[str, ...],
    provision: Callable[[Path], None] | None = None,
    provision_id: str = "",
    suite: str = SUITE,
) -> Path:
    """Build (or reuse) a debootstrapped minbase root of `suite` (trixie) with `packages`.

    The stamp file is written last, so an interrupted build is never mistaken for a complete
    one; a root without a matching stamp is removed and rebuilt. `provision` runs on the
    fresh root before the stamp (its `provision_id` is part of the stamp).
    """
    stamp = _stamp(packages, provision_id, suite)
    stamp_file = root / STAMP_NAME
    if stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return root
    # Two test runs at once (CI jobs, engineers) must not build into each other's folder.
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.with_name(f".{root.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
            return root  # built by the run we waited for
        return _build_root(root, packages, stamp, provision, suite)


def _build_root(
    root: Path,
    packages: tuple[str, ...],
    stamp: str,
    provision: Callable[[Path], None] | None,
    suite: str = SUITE,
) -> Path:
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap not found: run scripts/test-deps")
    _log(f"debootstrapping {suite} into {root} (cached for later runs)")
    tmp = root.with_name(root.name + ".building")
    remove_tree(tmp)
    remove_tree(root)
    # One package cache per root: roots may be built at the same time (see images.py).
    deb_cache = DEB_CACHE / root.name
    deb_cache.mkdir(parents=True, exist_ok=True)
    log_path = root.with_name(root.name + ".debootstrap.log")
    started = time.monotonic()
    with open(log_path, "wb") as log:
        res = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--cache-dir={deb_cache}",
                "--include=" + ",".join(packages),
                suite,
                str(tmp),
                MIRROR,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if res.returncode != 0:
        for mp in _mounts_under(tmp):
            subprocess.run(["umount", "-l", mp], check=False, capture_output=True)
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"debootstrap of {suite} failed ({res.returncode}); log {log_path}:\n{tail}"
        )
    for sub in ("var/cache/apt/archives",):
        for p in (tmp / sub).glob("*.deb"):
            p.unlink()
    if provision is not None:
        provision(tmp)
    (tmp / STAMP_NAME).write_text(stamp + "\n")
    tmp.rename(root)
    _log(f"debootstrap done in {time.monotonic() - started:.0f}s")
    return root


VENV = "/opt/psquadlet"
PROVISION_ID = "venv-v1"
NSPAWN_ENV = {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
GIT_LS = ["git", "-c", "core.quotepath=off"]
INNER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

CONTAINERS_CONF = """\
# psquadlet test bed: podman 5.4 inside systemd-nspawn on this kind of host (testbed.md)
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
keyring = false
pids_limit = 0

[engine]
runtime = "runc"
"""


def _registries_conf(hosts: Sequence[str]) -> str:
    parts = ["# psquadlet test bed: loopback registries speak plain HTTP\n"]
    for host in hosts:
        parts.append(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n\n')
    return "".join(parts)


def _provision_testbed_root(root: Path) -> None:
    """The operator's one-time setup: a venv for psquadlet that uses Debian's libraries.

    psquadlet's dependencies (click, podman-py, pystemd, PyYAML) come from trixie's packages
    (python3-click, python3-podman, python3-pystemd, python3-yaml); the venv sees them through
    --system-site-packages, and psquadlet itself is installed into it with
    `pip install --no-deps` from the working tree on every test run.
    """
    res = subprocess.run(
        ["chroot", str(root), "python3", "-m", "venv", "--system-site-packages", VENV],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"creating {VENV} in the test bed root failed:\n{res.stderr}")


def testbed_root() -> Path:
    """The cached, provisioned Debian 13 root (built when missing or outdated)."""
    return debootstrap(
        CACHE / "testbed-root",
        TESTBED_PACKAGES,
        provision=_provision_testbed_root,
        provision_id=PROVISION_ID,
    )


# A Debian 12 host as an operator has it before psquadlet: systemd 252, podman 4.3.1 (no
# Quadlet) and python3, nothing of psquadlet's own dependencies (testbed.md, "A Debian 12
# host"). The package tests install the .deb into it with apt, which fetches the rest.
BOOKWORM_SUITE = "bookworm"
BOOKWORM_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "podman",
    "netavark",
    "aardvark-dns",
    "runc",
    "catatonit",
    "iproute2",
    "procps",
    "python3",
)
# What `apt-get install ./psquadlet_*.deb` pulls on bookworm (Depends, Recommends), fetched
# once into the root's apt cache so that each run installs them without the network.
BOOKWORM_PREFETCH = ("python3-click", "python3-pystemd", "python3-requests")
BOOKWORM_PROVISION_ID = "apt-lists-prefetch-v1"


def _provision_bookworm_root(root: Path) -> None:
    """Package lists (debootstrap leaves none) and the .deb's dependencies, downloaded only."""
    env = {"PATH": INNER_PATH, "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-q", "-y", "--download-only", *BOOKWORM_PREFETCH],
    ):
        res = subprocess.run(
            ["chroot", str(root), *cmd], capture_output=True, text=True, env=env, check=False
        )
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} in the bookworm root failed:\n{res.stderr}")


def bookworm_root() -> Path:
    """The cached Debian 12 root (built when missing or outdated; 86 s and 445 MB here)."""
    return debootstrap(
        CACHE / "bookworm-root",
        BOOKWORM_PACKAGES,
        provision=_provision_bookworm_root,  # after debootstrap's own .debs are dropped
        provision_id=BOOKWORM_PROVISION_ID,
        suite=BOOKWORM_SUITE,
    )


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                out.extend(kids)
                todo.extend(kids)
        except OSError:
            continue
    return out


def _is_ns_init(pid: int) -> bool:
    """True when `pid` is PID 1 of a nested PID namespace."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    ids = line.split()[1:]
                    return len(ids) >= 2 and ids[-1] == "1"
    except OSError:
        return False
    return False


class TestBedError(RuntimeError):
    pass


class TestBed:
    """A booted Debian 13 (systemd 257, podman 5.4) in systemd-nspawn, sharing the host network.

    The cached root is the lower layer of an overlayfs; each TestBed gets its own upper layer
    in a scratch folder, so it starts clean and nothing leaks into the cache. Podman's storage
    inside is a bind mount of a plain folder (podman's overlay driver on an overlayfs root
    would not work). Only processes this object started are ever signalled.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        name: str | None = None,
        registries: Sequence[str] = ("127.0.0.1:5000", "localhost:5000"),
        scratch: Path | None = None,
        lower: Callable[[], Path] = testbed_root,
    ) -> None:
        """`lower` gives the cached root to boot (default: Debian 13; `bookworm_root`)."""
        self.name = name or f"psq-e2e-{os.getpid()}"
        self.journal_from: str | None = None  # a journal cursor: journal() reads after it
        self._lower = lower
        self.registries = tuple(registries)
        self.scratch = scratch or Path(
            tempfile.mkdtemp(prefix="psquadlet-testbed-", dir="/var/tmp")
        )
        self.merged = self.scratch / "merged"
        self.console_log = self.scratch / "console.log"
        self._nspawn: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # the test bed's systemd (PID 1 inside), host PID
        self._mounted = False
        self._closed = False
        atexit.register(self.close)

    # ----------------------------------------------------------------- lifecycle
    def prepare(self) -> None:
        """Cached root + a fresh overlay on top + the per-run configuration."""
        for prog in ("systemd-nspawn", "nsenter", "debootstrap"):
            if shutil.which(prog) is None:
                raise TestBedError(f"{prog} not found: run scripts/test-deps")
        lower = self._lower()
        for sub in ("upper", "work", "merged", "containers"):
            (self.scratch / sub).mkdir(parents=True, exist_ok=True)
        res = subprocess.run(
            [
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir={lower},upperdir={self.scratch / 'upper'},"
                f"workdir={self.scratch / 'work'}",
                str(self.merged),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            raise TestBedError(f"overlay mount of the test bed root failed: {res.stderr.strip()}")
        self._mounted = True
        root = self.merged
        (root / "etc/machine-id").write_text(secrets.token_hex(16) + "\n")
        (root / "etc/hostname").write_text("psq-testbed\n")
        (root / "etc/containers").mkdir(parents=True, exist_ok=True)
        (root / "etc/containers/containers.conf").write_text(CONTAINERS_CONF)
        regd = root / "etc/containers/registries.conf.d"
        regd.mkdir(parents=True, exist_ok=True)
        (regd / "50-psquadlet-tests.conf").write_text(_registries_conf(self.registries))
        # The API socket, so podman-py can reach this podman from the host.
        wants = root / "etc/systemd/system/sockets.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / "podman.socket"
        if not link.is_symlink():
            link.symlink_to("/usr/lib/systemd/system/podman.socket")
        # Kernel modules cannot be loaded from a container: the unit only fails noisily.
        mask = root / "etc/systemd/system/systemd-modules-load.service"
        if not mask.is_symlink():
            mask.symlink_to("/dev/null")

    def boot(self, timeout: float = 120.0) -> None:
        if not self._mounted:
            self.prepare()
        cmd = [
            "systemd-nspawn",
            "--keep-unit",
            "--register=no",
            "--capability=all",
            "--system-call-filter=@keyring bpf",
            "-D",
            str(self.merged),
            f"--machine={self.name}",
            f"--bind={self.scratch / 'containers'}:/var/lib/containers",
            "--console=passive",
            "-b",
        ]
        with open(self.console_log, "ab") as log:
            self._nspawn = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **NSPAWN_ENV},
                start_new_session=True,  # Ctrl-C reaches pytest only; teardown stops us
            )
        deadline = time.monotonic() + timeout
        self.pid = None
        while time.monotonic() < deadline:
            if self._nspawn.poll() is not None:
                raise TestBedError(
                    f"systemd-nspawn exited with {self._nspawn.returncode}; console:\n"
                    + self.console_log.read_text(errors="replace")[-3000:]
                )
            if self.pid is None:
                self.pid = next((p for p in _descendants(self._nspawn.pid) if _is_ns_init(p)), None)
            if self.pid is not None:
                res = self.run(["systemctl", "is-system-running"], check=False, timeout=10)
                state = res.stdout.strip()
                if state in ("running", "degraded"):
                    if state == "degraded":
                        failed = self.run(
                            ["systemctl", "--failed", "--no-legend", "--plain"], check=False
                        ).stdout
                        _log(f"test bed degraded; failed units:\n{failed}")
                    return
            time.sleep(0.2)
        raise TestBedError(
            f"test bed did not finish booting within {timeout}s; console:\n"
            + self.console_log.read_text(errors="replace")[-3000:]
        )

    def shutdown(self, timeout: float = 60.0) -> None:
        """Power the test bed off (SIGTERM to nspawn = clean poweroff), SIGKILL if stuck."""
        proc, self._nspawn = self._nspawn, None
        pid1, self.pid = self.pid, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            _log("test bed did not power off in time: killing it")
        if pid1 is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid1, signal.SIGKILL)  # kills its whole PID namespace
        proc.kill()
        proc.wait()

    def reboot(self, timeout: float = 120.0) -> None:
        """A clean poweroff and a new boot of the same root (state kept)."""
        self.shutdown()
        self.boot(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.shutdown()
        finally:
            if self._mounted:
                subprocess.run(["umount", str(self.merged)], check=False, capture_output=True)
                self._mounted = False
            if os.environ.get("PSQUADLET_KEEP_TESTBED"):
                _log(f"keeping {self.scratch} (PSQUADLET_KEEP_TESTBED)")
            else:
                remove_tree(self.scratch)

    def __enter__(self) -> TestBed:
        self.boot()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------- access
    def _pid(self) -> int:
        if self.pid is None:
            raise TestBedError("the test bed is not running")
        return self.pid

    def run(
        self,
        cmd: Sequence[str],
        check: bool = True,
        timeout: float = 300.0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside (all its namespaces), as root, with a clean environment."""
        inner_env = {"PATH": INNER_PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
        full = [
            "nsenter",
            "-t",
            str(self._pid()),
            "-a",
            "env",
            "-i",
            *[f"{k}={v}" for k, v in inner_env.items()],
            *cmd,
        ]
        res = subprocess.run(
            full, capture_output=True, text=True, timeout=timeout, input=input, check=False
        )
        if check and res.returncode != 0:
            raise TestBedError(
                f"in test bed: {' '.join(cmd)} exited {res.returncode}\n"
                f"stdout: {res.stdout[-3000:]}\nstderr: {res.stderr[-3000:]}"
            )
        return res

    def sh(self, script: str, check: bool = True, timeout: float = 300.0) -> str:
        return self.run(["/bin/sh", "-c", script], check=check, timeout=timeout).stdout

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(["systemctl", "--no-pager", *args], check=check)

    def journal_cursor(self) -> str:
        """The journal's end as a cursor, for ``journal(after=...)``.

        ``--sync`` first: every message logged before this call is in the journal, so none of
        them can land after the cursor. A cursor, not a time: ``--since`` has one-second
        resolution and would count a start from just before the window (issue 17 item 1).
        """
        self.run(["journalctl", "--sync"], check=False)
        res = self.run(["journalctl", "--no-pager", "-n", "1", "-o", "json"], check=False)
        lines = res.stdout.strip().splitlines()
        if not lines:
            return ""
        return str(json.loads(lines[-1])["__CURSOR"])

    def journal(self, unit: str | None = None, after: str | None = None) -> str:
        """The journal (of ``unit``): what came after the cursor ``after``, else after
        ``journal_from`` (set per test by the e2e ``clean_testbed`` fixture), else all."""
        after = after or self.journal_from
        if after:
            self.run(["journalctl", "--sync"], check=False)
        cmd = ["journalctl", "--no-pager", "-o", "short-precise"]
        if unit:
            cmd += ["-u", unit]
        if after:
            cmd += ["--after-cursor", after]
        return self.run(cmd, check=False).stdout

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(["podman", *args], check=check)

    def path(self, inner: str) -> Path:
        """A path inside the test bed, as seen from the host."""
        return Path(f"/proc/{self._pid()}/root") / inner.lstrip("/")

    def write(self, inner: str, text: str, mode: int = 0o644) -> None:
        p = self.path(inner)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)

    @property
    def dbus_address(self) -> bytes:
        """For pystemd: `DBusAddress(testbed.dbus_address)` reaches the test bed's systemd."""
        return f"unix:path=/proc/{self._pid()}/root/run/dbus/system_bus_socket".encode()

    @property
    def podman_url(self) -> str:
        """For podman-py: `PodmanClient(base_url=testbed.podman_url)`."""
        return f"unix:///proc/{self._pid()}/root/run/podman/podman.sock"

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.25)
        raise TestBedError(f"timed out after {timeout}s waiting for {what}")

    # ---------------------------------------------------------------- psquadlet
    def install_psquadlet(self, repo: Path) -> str:
        """Install the CURRENT working tree (committed or not) the way the docs tell operators.

        Copies the tree's files (what git would see: tracked and untracked, not ignored) to
        /usr/local/src/psquadlet and runs `pip install --no-deps` into the venv that uses
        Debian's python3-click/-podman/-pystemd/-yaml. Returns the installed version.
        """
        files = subprocess.run(
            [*GIT_LS, "-C", str(repo), "ls-files", "-z", "-co", "--exclude-standard"],
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        src_inner = "/usr/local/src/psquadlet"
        dest = self.path(src_inner)
        if dest.exists():
            shutil.rmtree(dest)
        for raw in files:
            rel = raw.decode()
            if not rel or rel.startswith(("tests/", "bench/", ".ci/")):
                continue
            src = repo / rel
            if not src.is_file():
                continue  # deleted in the working tree
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
        self.run(
            [
                f"{VENV}/bin/pip",
                "install",
                "-q",
                "--no-deps",
                "--no-index",
                "--no-build-isolation",
                "--force-reinstall",
                src_inner,
            ],
            env={"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        self.run(["ln", "-sf", f"{VENV}/bin/psquadlet", "/usr/local/bin/psquadlet"])
        # The watcher's units from the tree, with ExecStart pointed at the venv's entry point
        # (they name /usr/bin/psquadlet, where the Debian package puts it).
        for unit in sorted((repo / "units").glob("psquadlet-*")):
            if unit.suffix not in (".service", ".timer"):
                continue
            self.write(f"/etc/systemd/system/{unit.name}", unit.read_text())
            if unit.suffix == ".service":
                text = unit.read_text()
                execs = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
                lines = ["[Service]", "ExecStart="] + [
                    ln.replace("/usr/bin/psquadlet", "/usr/local/bin/psquadlet") for ln in execs
                ]
                self.write(
                    f"/etc/systemd/system/{unit.name}.d/50-venv.conf", "\n".join(lines) + "\n"
                )
        self.systemctl("daemon-reload")
        return self.run(
            [f"{VENV}/bin/python", "-c", "import psquadlet; print(psquadlet.__version__)"]
        ).stdout.strip()


if __name__ == "__main__":
    started = time.monotonic()
    with TestBed() as tb:
        _log(f"booted in {time.monotonic() - started:.1f}s, PID {tb.pid}")
        print(tb.sh("systemctl is-system-running; podman --version; python3 --version"))


def short_health_toml(unit: str) -> str:
    """TOML for ``[containers.UNIT.health]`` with test-sized times: the preset's real ones
    (1m interval, 5m start period) would make a broken image's start job wait minutes for
    Podman's verdict. The check command and restart budget stay the preset's."""
    return f'[containers.{unit}.health]\ninterval = "2s"\ntimeout = "2s"\nstart_period = "30s"\n'
