"""Both Units adapters (pystemd, busctl) against real systemd 257: the booted test bed.

Host systemd is not PID 1 here, so the only real systemd is the one in the test bed; the
adapters talk to it through the bus socket under /proc/PID/root, as the watcher's
``--dbus-address`` allows. Every test runs over both adapters: the same calls, the same
answers, the same errors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Callable

import pytest

from psquadlet.watch.interfaces import UnitError, UnitsAdapter
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


Make = Callable[[str], UnitsAdapter]


@pytest.fixture(params=["pystemd", "busctl"])
def make(request: pytest.FixtureRequest) -> Make:
    """The adapter under test, for a bus address."""
    if request.param == "pystemd":
        from psquadlet.watch.systemd_units import SystemdUnits

        return SystemdUnits
    from psquadlet.watch.busctl_units import BusctlUnits

    return BusctlUnits


def test_start_restart_wait_for_the_job(bed: TestBed, make: Make) -> None:
    bed.systemctl("stop", "psq-sleeper.service")  # the other adapter's run may have left it up
    units = make(bed.dbus_address.decode())
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


def test_failed_start_is_a_unit_error(bed: TestBed, make: Make) -> None:
    units = make(bed.dbus_address.decode())
    with pytest.raises(
        UnitError,
        match=r"psq-broken.service: RestartUnit finished with the "
        r"unit failed \(result: exit-code\)",
    ):
        units.restart("psq-broken.service", timeout=30)
    assert units.active_state("psq-broken.service") == "failed"


def test_reset_failed_leaves_the_failed_state(bed: TestBed, make: Make) -> None:
    units = make(bed.dbus_address.decode())
    with pytest.raises(UnitError):
        units.start("psq-broken.service", timeout=30)
    assert units.active_state("psq-broken.service") == "failed"
    units.reset_failed("psq-broken.service")
    assert units.active_state("psq-broken.service") == "inactive"


def test_reload_and_source_path(bed: TestBed, make: Make) -> None:
    """What the release drop-in writer uses: the unit's file, and a reload that has finished
    when the call returns (the new Description is there at once)."""
    units = make(bed.dbus_address.decode())
    path = "/etc/systemd/system/psq-reload.service"
    bed.write(path, "[Service]\nExecStart=/bin/true\n")
    units.daemon_reload()
    assert units.source_path("psq-reload.service") == path
    bed.write(path, "[Unit]\nDescription=reloaded\n[Service]\nExecStart=/bin/true\n")
    units.daemon_reload()
    show = bed.systemctl(
        "show", "--property=Description,NeedDaemonReload", "psq-reload.service"
    ).stdout.split()
    assert sorted(show) == ["Description=reloaded", "NeedDaemonReload=no"]
    with pytest.raises(UnitError, match=r"no-such-unit\.service"):
        units.restart("no-such-unit.service", timeout=30)


def test_a_unit_name_that_looks_like_an_option(bed: TestBed, make: Make) -> None:
    units = make(bed.dbus_address.decode())
    assert units.active_state("-.mount") == "active"  # the root file system's mount unit


def test_job_timeout_is_reported(bed: TestBed, make: Make) -> None:
    bed.systemctl("stop", "psq-sleeper.service")
    units = make(bed.dbus_address.decode())
    with pytest.raises(UnitError, match=r"job still running after 0\.5s"):
        units.start("psq-sleeper.service", timeout=0.5)


def test_unreachable_bus_is_a_unit_error(make: Make) -> None:
    with pytest.raises(UnitError, match="cannot connect to systemd"):
        make("unix:path=/nonexistent/bus").active_state("x.service")


@pytest.mark.parametrize("unit", ["perfsonar-testpoint.service", "0day.service", "a@b.service"])
def test_busctl_object_paths_are_systemds(bed: TestBed, unit: str) -> None:
    from psquadlet.watch.busctl_units import unit_object_path

    res = bed.run(
        ["busctl", "--json=short", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
         "org.freedesktop.systemd1.Manager", "LoadUnit", "s", unit]
    )  # fmt: skip
    assert json.loads(res.stdout)["data"] == [unit_object_path(unit)]
