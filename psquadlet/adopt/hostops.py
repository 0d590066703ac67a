"""What an adoption does to the host, as one small interface (``HostOps``) and its adapter.

The switch-over (``adopt.switch``) is plain logic over this Protocol, so its steps, failures
and undo are tested with a stand-in; ``SystemHost`` runs ``systemctl`` and ``podman``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Protocol

from psquadlet.adopt.record import AdoptError
from psquadlet.host import parse_systemctl_show


class HostOps(Protocol):
    def unit_state(self, unit: str) -> tuple[bool, bool]:
        """(enabled, active)."""

    def dependents(self, unit: str) -> list[str]:
        """Active units that systemd stops together with ``unit`` (RequiredBy=, BoundBy=)."""

    def systemctl(self, *args: str) -> None:
        """Run ``systemctl ARGS``; raises AdoptError."""

    def container_running(self, name: str) -> bool | None:
        """None: no such container."""

    def podman(self, *args: str) -> None:
        """Run ``podman ARGS``; raises AdoptError."""


def _run(argv: Sequence[str], timeout: float) -> str:
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise AdoptError(f"{' '.join(argv)}: {exc}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise AdoptError(
            f"{' '.join(argv)} failed"
            + (f": {detail[0][:300]}" if detail else f" ({done.returncode})")
        )
    return done.stdout


class SystemHost:
    """The real host: the system manager and root's Podman."""

    def __init__(self, timeout: float = 900.0) -> None:
        self.timeout = timeout

    def _show(self, unit: str, *props: str) -> dict[str, str]:
        args = [f"--property={p}" for p in props]
        return parse_systemctl_show(_run(["systemctl", "show", *args, "--", unit], 60))

    def unit_state(self, unit: str) -> tuple[bool, bool]:
        shown = self._show(unit, "UnitFileState", "ActiveState")
        enabled = shown.get("UnitFileState", "") in ("enabled", "enabled-runtime")
        return enabled, shown.get("ActiveState", "") in ("active", "activating", "reloading")

    def dependents(self, unit: str) -> list[str]:
        shown = self._show(unit, "RequiredBy", "BoundBy")
        names = " ".join((shown.get("RequiredBy", ""), shown.get("BoundBy", ""))).split()
        return [n for n in dict.fromkeys(names) if self.unit_state(n)[1]]

    def systemctl(self, *args: str) -> None:
        _run(["systemctl", *args], self.timeout)

    def container_running(self, name: str) -> bool | None:
        argv = ["podman", "container", "inspect", "--format", "{{.State.Running}}", "--", name]
        try:
            return _run(argv, 60).strip() == "true"
        except AdoptError:
            return None

    def podman(self, *args: str) -> None:
        _run(["podman", *args], self.timeout)
