"""The .deb on booted hosts, installed as the Ansible role or a script would: unattended.

Debian 12 (systemd 252, Podman 4.3.1, python3-pystemd 0.11, no python3-podman) and Debian 13
(systemd 257, Podman 5.4), each a cached root booted with systemd-nspawn (tests/support/
testbed.py). On each: a configuration already in /etc/psquadlet, `apt-get install -y
./psquadlet_*.deb` with no terminal, the watcher enabled and staying up, the adapters working
against that host's own systemd and Podman; with python3-pystemd removed, the watcher goes on
through busctl (issue 18 item 3: pystemd is optional); with podman-py removed, one clear
failure that systemd does not restart.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.operator.test_packages import deb  # noqa: F401 - the module-scoped .deb fixture
from tests.support import require_programs, require_root, testbed
from tests.support.testbed import TestBed

pytestmark = pytest.mark.e2e


PROBE_UNIT = "[Service]\nExecStart=/bin/sleep infinity\n"

# The watcher's adapters against this host's systemd and Podman, as the .deb installed them.
PROBE = """
import sys
from psquadlet.deps import require_watch_deps
from psquadlet.watch.app import systemd_units
adapter = require_watch_deps()
assert adapter == sys.argv[1], adapter
import podman
from psquadlet.watch.podman_images import PodmanImages
units = systemd_units(None)
assert type(units).__name__ == {"pystemd": "SystemdUnits", "busctl": "BusctlUnits"}[adapter]
units.restart("psq-probe.service", timeout=30)
assert units.active_state("psq-probe.service") == "active"
assert units.main_pid("psq-probe.service") > 0
assert PodmanImages().container_image("psq-no-such-container") is None
print(podman.__file__)
"""

HOSTS: dict[str, Callable[[], Path]] = {
    "debian12": testbed.bookworm_root,
    "debian13": testbed.testbed_root,
}


def _operator_config() -> str:
    """An operator's own file, written before the package is installed: it must stay as is."""
    init = subprocess.run(
        [sys.executable, "-m", "psquadlet", "init", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return "# the operator's own, written before the package was installed\n" + init.stdout


def _show(tb: TestBed, unit: str) -> dict[str, str]:
    out = tb.systemctl(
        "show",
        unit,
        "-p",
        "ActiveState",
        "-p",
        "SubState",
        "-p",
        "NRestarts",
        "-p",
        "ExecMainStatus",
        "-p",
        "MainPID",
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_deb_installs_unattended_and_the_watcher_stays_up(
    host: str,
    deb: Path,  # noqa: F811
) -> None:
    require_root()
    require_programs("systemd-nspawn", "nsenter", "debootstrap")
    tb = TestBed(name=f"psq-pkg-{host}", registries=(), lower=HOSTS[host])
    try:
        started = time.monotonic()
        tb.boot()
        print(f"{host}: booted in {time.monotonic() - started:.1f}s")
        config = _operator_config()
        tb.write("/etc/psquadlet/psquadlet.toml", config)
        shutil.copy(deb, tb.path(f"/srv/{deb.name}"))
        # stdin is empty, not a terminal: a conffile prompt would fail here.
        res = tb.run(
            ["apt-get", "install", "-y", "-q", f"/srv/{deb.name}"],
            input="",
            env={"DEBIAN_FRONTEND": "noninteractive"},
        )
        assert "conffile" not in res.stdout + res.stderr
        assert tb.path("/etc/psquadlet/psquadlet.toml").read_text() == config
        assert tb.path("/usr/share/doc/psquadlet/examples/psquadlet.toml").is_file()

        tb.write("/etc/systemd/system/psq-probe.service", PROBE_UNIT)
        tb.systemctl("daemon-reload")
        where = tb.run(["python3", "-c", PROBE, "pystemd"]).stdout.strip()
        if host == "debian12":  # no python3-podman in bookworm: the package's own copy
            assert where.startswith("/usr/share/psquadlet/vendor/podman/"), where
        else:
            assert where.startswith("/usr/lib/python3/dist-packages/podman/"), where

        tb.systemctl("enable", "--now", "psquadlet-watch.service")
        first = _show(tb, "psquadlet-watch.service")
        time.sleep(5)
        later = _show(tb, "psquadlet-watch.service")
        assert later["ActiveState"] == "active", (later, tb.journal()[-6000:])
        assert later["NRestarts"] == "0"
        assert later["MainPID"] == first["MainPID"]
        assert "Traceback" not in tb.journal("psquadlet-watch.service")

        # pystemd taken away: the watcher goes on through busctl, and says so.
        tb.run(["apt-get", "remove", "-y", "-q", "python3-pystemd"], input="")
        tb.run(["python3", "-c", PROBE, "busctl"])
        tb.systemctl("restart", "psquadlet-watch.service")
        first = _show(tb, "psquadlet-watch.service")
        time.sleep(5)
        later = _show(tb, "psquadlet-watch.service")
        assert later["ActiveState"] == "active", (later, tb.journal()[-6000:])
        assert later["MainPID"] == first["MainPID"]
        status = tb.run(["psquadlet", "status"], check=False).stdout
        assert "watcher via:    busctl" in status, status
        doctor = tb.run(["psquadlet", "doctor"], check=False).stdout
        assert "through busctl" in doctor, doctor

        # A dependency the watcher cannot do without: one message naming the package, exit 5,
        # no restart. (python3-requests cannot go: the package depends on it.)
        # Both copies of podman-py: Debian 13's python3-podman and the package's own (broken
        # by hand: it is part of the package).
        tb.run(["apt-get", "remove", "-y", "-q", "python3-podman"], input="")
        tb.run(["rm", "-rf", "/usr/share/psquadlet/vendor/podman"])
        tb.systemctl("restart", "psquadlet-watch.service", check=False)
        tb.wait_for(
            lambda: _show(tb, "psquadlet-watch.service")["ActiveState"] == "failed",
            timeout=30,
            what="psquadlet-watch.service to fail",
        )
        state = _show(tb, "psquadlet-watch.service")
        assert state["ExecMainStatus"] == "5"
        assert state["NRestarts"] == "0"  # auto-restart would show SubState=auto-restart
        journal = tb.journal("psquadlet-watch.service")
        needs = [ln for ln in journal.splitlines() if "the watcher needs" in ln]
        assert len(needs) == 1, journal
        assert "install the package python3-podman" in needs[0]
        assert "Traceback" not in journal
    finally:
        tb.close()
