"""Stand-in images for perfsonar/testpoint, built by the tests with host podman.

The real perfSONAR images cannot be pulled here, and would be too big to push around in a test
anyway. Three kinds, each in as many versions as a test asks for:

- "plain": PID 1 is a long-running shell process that exits on SIGTERM (like the supervisord
  image, `perfsonar/testpoint:latest`). A static busybox, ~1 MB, via `podman import`.
- "sickly": a "plain" one whose `pscheduler troubleshoot` fails on demand (a file exists).
- "systemd": PID 1 is systemd (like `perfsonar/testpoint:systemd`), a debootstrapped Debian 13
  minbase with a tiny `psq-demo.service` inside. The base is cached; each version is a small
  layer added by `podman build` with COPY.

All answer the health commands a test might use: `/usr/local/bin/healthcheck` and
`pscheduler troubleshoot --quick` (the perfSONAR preset's update health command). A "broken"
version fails them: its service does not come up.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.support.registry import Registry
from tests.support.testbed import CACHE, debootstrap

PODMAN = ["podman"]  # host podman 4.3; test-deps configures runc + ulimits for it
REPO = "localhost/psquadlet-test"
SYSTEMD_BASE_PACKAGES = ("systemd", "systemd-sysv")
VERSION_FILE = "/etc/psq-version"

PLAIN_SERVE = """#!/bin/sh
# PID 1 of the plain stand-in: runs until SIGTERM, then exits 0 at once (like supervisord).
trap 'echo "stopping $(cat /etc/psq-version)"; exit 0' TERM INT
echo "serving $(cat /etc/psq-version)"
mkdir -p /run/psq-demo
{broken}
echo ready > /run/psq-demo/ready
while :; do sleep 3600 & wait $!; done
"""

HEALTHCHECK_PLAIN = """#!/bin/sh
test -f /run/psq-demo/ready && cat /etc/psq-version
"""

HEALTHCHECK_SYSTEMD = """#!/bin/sh
systemctl is-active --quiet psq-demo.service && test -f /run/psq-demo/ready && cat /etc/psq-version
"""

PSCHEDULER = """#!/bin/sh
# Stand-in for perfSONAR's `pscheduler troubleshoot --quick`: the preset's health command.
case "$*" in
  "troubleshoot"*) exec /usr/local/bin/healthcheck ;;
  *) echo "pscheduler stand-in: only 'troubleshoot' is implemented" >&2; exit 2 ;;
esac
"""

PSCHEDULER_SICKLY = """#!/bin/sh
# Stand-in for `pscheduler troubleshoot --quick` that fails on demand: while one of the files
# below exists. /run/psq-sick lives in the container (a restart re-creates the container
# without it); /var/lib/psq-health is meant for a bind mount, so it outlives restarts.
case "$*" in
  "troubleshoot"*)
    for sick in /run/psq-sick /var/lib/psq-health/sick; do
      if test -e "$sick"; then echo "pscheduler stand-in: unhealthy on demand ($sick)"; exit 1; fi
    done
    exec /usr/local/bin/healthcheck ;;
  *) echo "pscheduler stand-in: only 'troubleshoot' is implemented" >&2; exit 2 ;;
esac
"""

DEMO_SERVICE = """[Unit]
Description=psquadlet test stand-in for the perfSONAR services

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/bin/psq-demo-start

[Install]
WantedBy=multi-user.target
"""

DEMO_START_GOOD = """#!/bin/sh
mkdir -p /run/psq-demo && echo ready > /run/psq-demo/ready
"""

DEMO_START_BROKEN = """#!/bin/sh
echo "psq-demo: broken on purpose" >&2
exit 1
"""


@dataclass(frozen=True)
class StandIn:
    """A locally built stand-in image."""

    kind: str  # "plain" | "systemd"
    version: str
    broken: bool
    local: str  # local podman reference


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if res.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({res.returncode}):\n"
            f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        )
    return res  # type: ignore[no-any-return]


def image_exists(ref: str) -> bool:
    return subprocess.run([*PODMAN, "image", "exists", ref], check=False).returncode == 0


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def build_plain(
    version: str, broken: bool = False, stubborn: bool = False, sickly: bool = False
) -> StandIn:
    """A ~1 MB busybox image whose PID 1 is a shell loop that stops on SIGTERM.

    `stubborn`: PID 1 ignores SIGTERM (no handler; PID 1 gets no default action), so a stop
    waits out the stop timeout and ends in SIGKILL, like an image run with the wrong signal.
    `sickly`: its `pscheduler troubleshoot` fails while /run/psq-sick or
    /var/lib/psq-health/sick exists (``PSCHEDULER_SICKLY``; `touch` and `rm` are in the image).
    """
    kind = "sickly" if sickly else "stubborn" if stubborn else "plain"
    ref = f"{REPO}/{kind}:{version}{'-broken' if broken else ''}"
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("static busybox not found: run scripts/test-deps (busybox-static)")
    with tempfile.TemporaryDirectory(prefix="psq-plain-") as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        shutil.copy2(busybox, root / "bin" / "busybox")
        applets = ["sh", "sleep", "cat", "echo", "test", "mkdir", "ls", "ps", "kill", "true"]
        for applet in applets + (["touch", "rm"] if sickly else []):
            (root / "bin" / applet).symlink_to("busybox")
        for d in ("tmp", "run", "etc/perfsonar/psconfig", "proc", "sys", "dev"):
            (root / d).mkdir(parents=True, exist_ok=True)
        _write(root / "etc" / "psq-version", version + "\n")
        # Broken, but still running: its health command fails while the process stays up,
        # the case a health gate (and not just "did it start") must catch.
        never_ready = 'echo "broken on purpose" >&2; while :; do sleep 3600 & wait $!; done'
        serve = PLAIN_SERVE.format(broken=never_ready if broken else "")
        if stubborn:
            serve = serve.replace("trap ", ": no trap ", 1)
        _write(root / "usr/local/bin/serve", serve, 0o755)
        _write(root / "usr/local/bin/healthcheck", HEALTHCHECK_PLAIN, 0o755)
        _write(root / "usr/bin/pscheduler", PSCHEDULER_SICKLY if sickly else PSCHEDULER, 0o755)
        if sickly:
            (root / "var/lib/psq-health").mkdir(parents=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            _run(
                [
                    *PODMAN,
                    "import",
                    "--change",
                    'CMD ["/usr/local/bin/serve"]',
                    "--change",
                    "ENV PATH=/usr/local/bin:/usr/bin:/bin",
                    "--change",
                    f"LABEL org.opencontainers.image.version={version}",
                    "-",
                    ref,
                ],
                stdin=tar.stdout,
            )
        finally:
            if tar.stdout:
                tar.stdout.close()
            tar.wait()
    return StandIn(kind, version, broken, ref)


def systemd_base() -> str:
    """The cached Debian 13 + systemd base image (built once per machine)."""
    root = debootstrap(CACHE / "systemd-image-root", SYSTEMD_BASE_PACKAGES)
    stamp = (root / ".psquadlet-testbed-stamp").read_text().strip()[:12]
    ref = f"{REPO}/systemd-base:{stamp}"
    if image_exists(ref):
        return ref
    excludes = [
        "--exclude=./.psquadlet-testbed-stamp",
        "--exclude=./usr/share/doc/*",
        "--exclude=./usr/share/man/*",
        "--exclude=./usr/share/locale/*",
        "--exclude=./var/cache/apt/*",
        "--exclude=./var/lib/apt/lists/*",
        "--exclude=./dev/*",
    ]
    tar = subprocess.Popen(
        ["tar", "-C", str(root), *excludes, "-c", "."],
        stdout=subprocess.PIPE,
    )
    try:
        _run(
            [
                *PODMAN,
                "import",
                "--change",
                'CMD ["/lib/systemd/systemd"]',
                "--change",
                "ENV container=podman",
                "-",
                ref,
            ],
            stdin=tar.stdout,
        )
    finally:
        if tar.stdout:
            tar.stdout.close()
        tar.wait()
    return ref


def prebuild_systemd_base() -> threading.Thread:
    """Start building the systemd base in the background (e.g. while the test bed boots).

    Errors are not lost: `systemd_base()` is called again when a stand-in is built, and
    raises them then.
    """

    def work() -> None:
        with contextlib.suppress(Exception):
            systemd_base()

    thread = threading.Thread(target=work, name="systemd-base", daemon=True)
    thread.start()
    return thread


def build_systemd(version: str, broken: bool = False) -> StandIn:
    """A systemd-PID-1 image: the cached base plus one small layer for this version."""
    base = systemd_base()
    ref = f"{REPO}/systemd:{version}{'-broken' if broken else ''}"
    with tempfile.TemporaryDirectory(prefix="psq-systemd-") as tmp:
        ctx = Path(tmp)
        _write(ctx / "files/etc/psq-version", version + "\n")
        _write(ctx / "files/etc/systemd/system/psq-demo.service", DEMO_SERVICE)
        wants = ctx / "files/etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True)
        (wants / "psq-demo.service").symlink_to("/etc/systemd/system/psq-demo.service")
        _write(
            ctx / "files/usr/local/bin/psq-demo-start",
            DEMO_START_BROKEN if broken else DEMO_START_GOOD,
            0o755,
        )
        _write(ctx / "files/usr/local/bin/healthcheck", HEALTHCHECK_SYSTEMD, 0o755)
        _write(ctx / "files/usr/bin/pscheduler", PSCHEDULER, 0o755)
        (ctx / "files/etc/perfsonar/psconfig").mkdir(parents=True)
        (ctx / "Containerfile").write_text(
            f"FROM {base}\n"
            "COPY files/ /\n"
            f"LABEL org.opencontainers.image.version={version}\n"
            'CMD ["/lib/systemd/systemd"]\n'
        )
        _run([*PODMAN, "build", "--pull=never", "-q", "-t", ref, str(ctx)])
    return StandIn("systemd", version, broken, ref)


def build(kind: str, version: str, broken: bool = False) -> StandIn:
    if kind == "plain":
        return build_plain(version, broken)
    if kind == "stubborn":
        return build_plain(version, broken, stubborn=True)
    if kind == "sickly":
        return build_plain(version, broken, sickly=True)
    if kind == "systemd":
        return build_systemd(version, broken)
    raise ValueError(f"unknown stand-in kind {kind!r}")


def push(image: StandIn | str, dest: str, tls_verify: bool = False) -> str:
    """Push to `dest` (e.g. "127.0.0.1:5000/perfsonar/testpoint:systemd"); return its digest."""
    local = image.local if isinstance(image, StandIn) else image
    with tempfile.TemporaryDirectory(prefix="psq-push-") as tmp:
        digestfile = Path(tmp) / "digest"
        _run(
            [
                *PODMAN,
                "push",
                "-q",
                f"--tls-verify={'true' if tls_verify else 'false'}",
                "--digestfile",
                str(digestfile),
                local,
                "docker://" + dest,
            ]
        )
        return digestfile.read_text().strip()


def remove(ref: str) -> None:
    subprocess.run([*PODMAN, "rmi", "-f", ref], capture_output=True, check=False)


class StandIns:
    """Stand-in images built on demand (once per session) and pushed by tests."""

    def __init__(self, registry: Registry, base: threading.Thread | None = None) -> None:
        self.registry = registry
        self._base = base
        self._built: dict[tuple[str, str, bool], StandIn] = {}

    def get(self, kind: str, version: str, broken: bool = False) -> StandIn:
        if self._base is not None:
            self._base.join()
            self._base = None
        key = (kind, version, broken)
        if key not in self._built:
            self._built[key] = build(kind, version, broken)
        return self._built[key]

    def push(self, kind: str, version: str, dest: str, broken: bool = False) -> str:
        """Push a stand-in to `dest` ("perfsonar/testpoint:systemd"); return the digest."""
        return push(self.get(kind, version, broken), f"{self.registry.host}/{dest}")
