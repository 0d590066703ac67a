"""The pystemd adapter against real systemd 257: the booted test bed, reached over D-Bus.

Host systemd is not PID 1 here, so the only real systemd is the one in the test bed; the
adapter talks to it through the bus socket under /proc/PID/root, as the watcher's
``--dbus-address`` allows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from psquadlet.watch.interfaces import UnitError
from tests.support import require_programs, require_root
from tests.support.testbed import TestBed

pytestmark = pytest.mark.e2e

SLEEPER = """[Unit]
Description=psquadlet adapter test: slow to start
[Service]
ExecStartPre=/bin/sleep 2
ExecStart=/bin/sleep infinity
"""

BROKEN = """[Unit]
Description=psquadlet adapter test: fails to start
[Service]
Type=oneshot
ExecStart=/bin/false
"""


@pytest.fixture(scope="module")
def bed() -> Iterator[TestBed]:
    require_root()
    require_programs("systemd-nspawn", "nsenter", "debootstrap")
    tb = TestBed(registries=())
    try:
        try:
            tb.boot()
        except Exception as e:
            pytest.fail(f"the test bed could not be booted: {e}", pytrace=False)
        tb.write("/etc/systemd/system/psq-sleeper.service", SLEEPER)
        tb.write("/etc/systemd/system/psq-broken.service", BROKEN)
        tb.systemctl("daemon-reload")
        yield tb
    finally:
        tb.close()


def test_start_restart_wait_for_the_job(bed: TestBed) -> None:
    from psquadlet.watch.systemd_units import SystemdUnits

    units = SystemdUnits(bed.dbus_address.decode())
    assert units.active_state("psq-sleeper.service") == "inactive"
    t0 = time.monotonic()
    units.start("psq-sleeper.service", timeout=30)
    assert time.monotonic() - t0 >= 2  # waited for ExecStartPre, i.e. for the job
    assert units.active_state("psq-sleeper.service") == "active"
    pid1 = units.main_pid("psq-sleeper.service")
    assert pid1 > 0
    units.restart("psq-sleeper.service", timeout=30)
    assert units.active_state("psq-sleeper.service") == "active"
    assert units.main_pid("psq-sleeper.service") not in (0, pid1)


def test_failed_start_is_a_unit_error(bed: TestBed) -> None:
    from psquadlet.watch.systemd_units import SystemdUnits

    units = SystemdUnits(bed.dbus_address.decode())
    with pytest.raises(
        UnitError,
        match=r"psq-broken.service: RestartUnit finished with the "
        r"unit failed \(result: exit-code\)",
    ):
        units.restart("psq-broken.service", timeout=30)
    assert units.active_state("psq-broken.service") == "failed"


def test_job_timeout_is_reported(bed: TestBed) -> None:
    from psquadlet.watch.systemd_units import SystemdUnits

    bed.systemctl("stop", "psq-sleeper.service")
    units = SystemdUnits(bed.dbus_address.decode())
    with pytest.raises(UnitError, match=r"job still running after 0\.5s"):
        units.start("psq-sleeper.service", timeout=0.5)


def test_unreachable_bus_is_a_unit_error() -> None:
    from psquadlet.watch.systemd_units import SystemdUnits

    with pytest.raises(UnitError, match="cannot connect to systemd"):
        SystemdUnits("unix:path=/nonexistent/bus").active_state("x.service")
