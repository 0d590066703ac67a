"""The Units adapter with no compiled module: systemd's D-Bus API through ``busctl``.

pystemd is a C extension that PyPI publishes only as source (a compiler and the libsystemd
headers to install it) and that Enterprise Linux and EPEL do not package. ``busctl`` is part
of systemd itself on every distribution psquadlet runs on, and speaks the same D-Bus API:
this adapter calls the same Manager methods as ``systemd_units.SystemdUnits`` and reads the
same properties, one ``busctl --json=short`` call each (``--json`` since systemd 240; Debian
11 has 247, EL9 252), through ``psquadlet.host``'s runner, every call bounded in time.

``systemctl`` is not used: as root it talks to ``/run/systemd/private`` whatever bus address
it is given, so it could not be pointed at ``--dbus-address`` (the user bus, a test bed);
``busctl --address=`` can. A job is waited on as the pystemd adapter does: until it has left
``ListJobs``, bounded by the caller's timeout, then the unit's state says how it ended.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Sequence
from typing import Any

from psquadlet.deps import default_dbus_address
from psquadlet.host import Runner, run_command
from psquadlet.watch.interfaces import UnitError

DEST = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
SERVICE = "org.freedesktop.systemd1.Service"
POLL = 0.2
CALL_TIMEOUT = 30.0  # one busctl call (systemd answers in milliseconds; a reload can be slow)
RELOAD_TIMEOUT = 120.0


def unit_object_path(unit: str) -> str:
    """The unit's D-Bus object path (sd-bus's label escaping: ``a.service`` -> ``a_2eservice``).

    systemd loads a unit on a property read of this path, as ``LoadUnit`` would.
    """
    out = []
    for i, byte in enumerate(unit.encode()):
        c = chr(byte)
        if c.isascii() and (c.isalpha() or (c.isdigit() and i > 0)):
            out.append(c)
        else:
            out.append(f"_{byte:02x}")
    return f"{MANAGER_PATH}/unit/{''.join(out) or '_'}"


class BusctlUnits:
    def __init__(self, address: str | None = None, run: Runner | None = None) -> None:
        self.address = default_dbus_address() if address is None else address
        self._run_with = run

    def _busctl(self, args: Sequence[str], what: str, timeout: float = CALL_TIMEOUT) -> list[Any]:
        """One busctl call; its JSON answers (one per line), or UnitError naming *what*."""
        bus = f"--address={self.address}" if self.address else "--system"
        # "--": a unit name may begin with "-" (the root mount is "-.mount").
        argv = ["busctl", bus, "--json=short", f"--timeout={timeout:g}", "--", *args]
        run = self._run_with or functools.partial(run_command, timeout=timeout + 5)
        code, out = run(argv)
        if code == 127:
            raise UnitError(f"{what}: busctl not found (it comes with systemd)")
        if code != 0:
            where = self.address or "system bus"
            said = out.strip() or f"exit {code}"
            if said.startswith("Failed to connect to bus"):  # busctl's words for it
                raise UnitError(f"cannot connect to systemd over D-Bus ({where}): {said}")
            raise UnitError(f"{what}: busctl ({where}): {said}")
        answers = []
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    answers.append(json.loads(line))
                except ValueError as e:
                    raise UnitError(f"{what}: unreadable answer from busctl: {line!r}") from e
        return answers

    def _call(
        self, what: str, method: str, *signature_args: str, timeout: float = CALL_TIMEOUT
    ) -> Any:
        """A Manager method; its first out argument (None when it has none)."""
        answers = self._busctl(
            ["call", DEST, MANAGER_PATH, MANAGER, method, *signature_args], what, timeout
        )
        data = answers[0].get("data") if answers else None
        return data[0] if isinstance(data, list) and data else None

    def _properties(self, unit: str, interface: str, *names: str) -> list[Any]:
        what = f"{unit}: cannot read {', '.join(names)}"
        answers = self._busctl(
            ["get-property", DEST, unit_object_path(unit), interface, *names], what
        )
        if len(answers) != len(names):
            raise UnitError(f"{what}: busctl answered {len(answers)} of {len(names)} values")
        return [a.get("data") for a in answers]

    def _property(self, unit: str, interface: str, name: str) -> Any:
        return self._properties(unit, interface, name)[0]

    def active_state(self, unit: str) -> str:
        return str(self._property(unit, UNIT, "ActiveState"))

    def main_pid(self, unit: str) -> int:
        return int(self._property(unit, SERVICE, "MainPID"))

    def source_path(self, unit: str) -> str:
        """The file a generated unit came from (a Quadlet ``.container``), else its fragment."""
        source, fragment = self._properties(unit, UNIT, "SourcePath", "FragmentPath")
        return str(source or fragment or "")

    def daemon_reload(self) -> None:
        """``systemctl daemon-reload`` (reruns the Quadlet generator); returns once done."""
        self._call("systemd refused daemon-reload", "Reload", timeout=RELOAD_TIMEOUT)

    def reset_failed(self, unit: str) -> None:
        self._call(f"{unit}: systemd refused ResetFailedUnit", "ResetFailedUnit", "s", unit)

    def restart(self, unit: str, timeout: float) -> None:
        self._job(unit, "RestartUnit", timeout)

    def start(self, unit: str, timeout: float) -> None:
        self._job(unit, "StartUnit", timeout)

    def _job(self, unit: str, method: str, timeout: float) -> None:
        job = self._call(f"{unit}: systemd refused {method}", method, "ss", unit, "replace")
        if not isinstance(job, str):
            raise UnitError(f"{unit}: {method} returned no job")
        deadline = time.monotonic() + timeout
        while True:
            jobs = self._call(f"{unit}: cannot list systemd jobs", "ListJobs")
            # a(usssoo): id, unit, type, state, job path, unit path
            if job not in {j[4] for j in jobs or () if isinstance(j, list) and len(j) > 4}:
                break
            if time.monotonic() > deadline:
                raise UnitError(f"{unit}: {method} job still running after {timeout:g}s")
            time.sleep(POLL)
        state = self.active_state(unit)
        if state not in ("active", "activating", "reloading"):
            result = ""
            with contextlib.suppress(UnitError):  # not every unit type has a Service.Result
                result = str(self._property(unit, SERVICE, "Result"))
            raise UnitError(
                f"{unit}: {method} finished with the unit {state}"
                + (f" (result: {result})" if result else "")
            )
