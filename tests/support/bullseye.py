"""A Debian 11 "bullseye" host for the e2e test bed: Podman 3.0.1, systemd 247, Python 3.9.

It stands in for the Podman 3 family (Ubuntu 22.04 has 3.4.4, which cannot be fetched here).
The root is debootstrapped once with ``testbed.debootstrap`` (cached under CACHE, built under
the same lock and stamp pattern as the Debian 12/13 roots) and booted by
``TestBed(lower=bullseye_root)``.

psquadlet is installed as an operator on Debian 11 would: a venv ``/opt/psquadlet`` made with
``--system-site-packages`` over bullseye's python3-pystemd (0.7.0) and python3-requests; what
bullseye lacks or has too old (click 7.1.2 where psquadlet needs 8; no tomli, no
python3-podman) comes from PyPI as wheels. The wheels are downloaded on the host once, while
the root is built (``pip download --only-binary=:all: --python-version 3.9``), and installed
from that folder without a network, so a test run needs no index.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.testbed import CACHE, INNER_PATH, VENV, debootstrap

SUITE = "bullseye"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "podman",
    "runc",
    "iproute2",
    "procps",
    "ca-certificates",
    "python3",
    "python3-venv",
    "python3-pystemd",
    "python3-requests",
)
# From PyPI: bullseye has python3-click 7.1.2 (psquadlet needs click >= 8.0), no python3-tomli
# and no python3-podman (madison against bullseye main, 2026-12-08).
# setuptools >= 61 (bullseye's is 52) and wheel build psquadlet from its pyproject.toml, as
# pip's build isolation would fetch them for an operator.
WHEELS = ("click>=8.0,<8.2", "tomli>=1.1", "podman>=4.4", "setuptools>=61", "wheel")
WHEEL_DIR = "/opt/psquadlet-wheels"
PROVISION_ID = "venv-wheels-v2"


def _provision(root: Path) -> None:
    """The venv over bullseye's libraries, plus the PyPI wheels bullseye lacks."""
    wheels = root / WHEEL_DIR.lstrip("/")
    wheels.mkdir(parents=True, exist_ok=True)
    steps = (
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
         "--python-version", "3.9", "--implementation", "py", "--dest", str(wheels), *WHEELS],
        ["chroot", str(root), "python3", "-m", "venv", "--system-site-packages", VENV],
        ["chroot", str(root), f"{VENV}/bin/pip", "install", "-q", "--no-index",
         "--find-links", WHEEL_DIR, *WHEELS],
    )  # fmt: skip
    inner = {"PATH": INNER_PATH, "LANG": "C.UTF-8", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for argv in steps:
        # The download runs on the host with its own pip settings (index, CA bundle).
        env = None if argv[0] == sys.executable else inner
        res = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{res.stdout}\n{res.stderr}")


def bullseye_root() -> Path:
    """The cached Debian 11 root (built when missing or outdated)."""
    return debootstrap(
        CACHE / "bullseye-root",
        PACKAGES,
        provision=_provision,
        provision_id=PROVISION_ID,
        suite=SUITE,
    )


if __name__ == "__main__":
    print(bullseye_root())
