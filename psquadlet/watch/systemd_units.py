"""The Units adapter: systemd's D-Bus API through pystemd.

A restart is a job; the upgrade must not look at the container before systemd is done with
it, so ``restart`` waits until the job has left systemd's job list and then checks the
unit's state. The bus address is a parameter (default: the system bus) so the e2e test bed
can reach the systemd inside its container from the host.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Callable

from pystemd.dbuslib import DBus, DBusAddress
from pystemd.systemd1 import Manager, Unit

from psquadlet.deps import default_dbus_address
from psquadlet.watch.interfaces import UnitError

POLL = 0.2


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SystemdUnits:
    def __init__(self, address: str | None = None) -> None:
        self.address = default_dbus_address() if address is None else address

    @contextmanager
    def _bus(self) -> Iterator[Any]:
        bus = DBusAddress(self.address.encode()) if self.address else DBus()
        try:
            bus.open()
        except Exception as e:
            raise UnitError(
                f"cannot connect to systemd over D-Bus ({self.address or 'system bus'}): {e}"
            ) from e
        try:
            yield bus
        finally:
            bus.close()

    def _property(self, unit: str, read: Callable[[Any], Any], what: str) -> Any:
        with self._bus() as bus:
            try:
                return read(Unit(unit.encode(), bus=bus, _autoload=True))
            except Exception as e:
                raise UnitError(f"{unit}: cannot read {what}: {e}") from e

    def active_state(self, unit: str) -> str:
        return _text(self._property(unit, lambda u: u.Unit.ActiveState, "ActiveState"))

    def main_pid(self, unit: str) -> int:
        return int(self._property(unit, lambda u: u.Service.MainPID, "MainPID"))

    def source_path(self, unit: str) -> str:
        """The file a generated unit came from (a Quadlet ``.container``), else its fragment."""
        source = _text(self._property(unit, lambda u: u.Unit.SourcePath, "SourcePath"))
        return source or _text(self._property(unit, lambda u: u.Unit.FragmentPath, "FragmentPath"))

    def daemon_reload(self) -> None:
        """``systemctl daemon-reload`` (reruns the Quadlet generator); returns once done."""
        with self._bus() as bus:
            try:
                Manager(bus=bus, _autoload=True).Manager.Reload()
            except Exception as e:
                raise UnitError(f"systemd refused daemon-reload: {e}") from e

    def restart(self, unit: str, timeout: float) -> None:
        self._job(unit, "RestartUnit", timeout)

    def start(self, unit: str, timeout: float) -> None:
        self._job(unit, "StartUnit", timeout)

    def reset_failed(self, unit: str) -> None:
        with self._bus() as bus:
            try:
                Manager(bus=bus, _autoload=True).Manager.ResetFailedUnit(unit.encode())
            except Exception as e:
                raise UnitError(f"{unit}: systemd refused ResetFailedUnit: {e}") from e

    def _job(self, unit: str, method: str, timeout: float) -> None:
        with self._bus() as bus:
            manager = Manager(bus=bus, _autoload=True)
            try:
                job = getattr(manager.Manager, method)(unit.encode(), b"replace")
            except Exception as e:
                raise UnitError(f"{unit}: systemd refused {method}: {e}") from e
            deadline = time.monotonic() + timeout
            while True:
                try:
                    pending = {j[4] for j in manager.Manager.ListJobs()}
                except Exception as e:
                    raise UnitError(f"{unit}: cannot list systemd jobs: {e}") from e
                if job not in pending:
                    break
                if time.monotonic() > deadline:
                    raise UnitError(f"{unit}: {method} job still running after {timeout:g}s")
                time.sleep(POLL)
            u = Unit(unit.encode(), bus=bus, _autoload=True)
            state = _text(u.Unit.ActiveState)
            if state not in ("active", "activating", "reloading"):
                result = ""
                with suppress(Exception):  # not every unit type has a Service.Result
                    result = _text(u.Service.Result)
                raise UnitError(
                    f"{unit}: {method} finished with the unit {state}"
                    + (f" (result: {result})" if result else "")
                )
