"""The shipped unit files pass `systemd-analyze verify` with nothing printed.

systemd 252's verify exits 0 even on "Unknown key" warnings, so the test demands silence.
It runs against a scratch root (`--root`) holding a copy of the host's systemd units and a
stand-in /usr/bin/psquadlet, so ExecStart= is checked without installing anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import require_programs

UNITS = Path(__file__).resolve().parents[2] / "units"
NAMES = sorted(p.name for p in UNITS.glob("psquadlet-*"))  # every shipped unit

pytestmark = pytest.mark.oracle


def _root(tmp_path: Path) -> Path:
    require_programs("systemd-analyze")
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    stub = root / "usr/bin/psquadlet"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    return root


def _verify(root: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            f"--root={root}",
            *[f"/etc/systemd/system/{n}" for n in names],
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )


def test_shipped_units_verify_silently(tmp_path: Path) -> None:
    assert "psquadlet-health.timer" in NAMES
    root = _root(tmp_path)
    for name in NAMES:
        shutil.copy(UNITS / name, root / "etc/systemd/system" / name)
    res = _verify(root, NAMES)
    assert res.returncode == 0, res.stderr
    assert res.stdout + res.stderr == ""


def test_verify_would_catch_a_bad_key(tmp_path: Path) -> None:
    """Control: the same harness reports a misspelt key, so silence above means something."""
    root = _root(tmp_path)
    text = (UNITS / "psquadlet-watch.service").read_text()
    bad = text.replace("WatchdogSec=", "WatchDogSec=")
    assert bad != text
    (root / "etc/systemd/system/psquadlet-watch.service").write_text(bad)
    res = _verify(root, ["psquadlet-watch.service"])
    assert "WatchDogSec" in res.stdout + res.stderr


def test_watch_unit_is_a_notify_daemon_with_watchdog() -> None:
    text = (UNITS / "psquadlet-watch.service").read_text()
    assert "Type=notify" in text
    assert "WatchdogSec=" in text
    assert "ExecStart=/usr/bin/psquadlet watch" in text
