"""The doctor's check of the upgrade watcher: can it run here, and how it reaches systemd.

The answer is ``psquadlet.deps``' own (``require_watch_deps``, ``systemd_adapter``), the
same lookup ``upgrade`` and ``watch`` make first, so doctor cannot disagree with them.
"""

from __future__ import annotations

from psquadlet import deps
from psquadlet.doctor.context import Context
from psquadlet.doctor.report import FAIL, PASS, WARN, Check
from psquadlet.errors import UsageError

ADAPTER_HOW = {
    deps.PYSTEMD: "pystemd (systemd's D-Bus API through libsystemd)",
    deps.BUSCTL: "busctl (systemd's D-Bus API, no Python module needed)",
}


def check_watcher(ctx: Context) -> Check:
    try:
        adapter = deps.require_watch_deps()
    except deps.MissingDependencyError as e:
        return Check(
            "watcher",
            WARN,
            f"'psquadlet upgrade' and 'watch' cannot run: {e.module} is {e.reason}",
            f"install the package {e.package}, or 'pip install {e.pip_name}' in psquadlet's venv",
            items=({"adapter": None, "missing": e.module},),
        )
    except UsageError as e:
        return Check("watcher", FAIL, str(e), f"unset {deps.SYSTEMD_ADAPTER_ENV} or fix it")
    item = {"adapter": adapter, "missing": None}
    if adapter == deps.BUSCTL and ctx.host.which("busctl") is None:
        return Check(
            "watcher",
            WARN,
            "the watcher would reach systemd through busctl, which is not installed",
            "install systemd's busctl, or pystemd (python3-pystemd)",
            items=({**item, "missing": "busctl"},),
        )
    return Check(
        "watcher",
        PASS,
        f"the watcher reaches systemd through {ADAPTER_HOW[adapter]}",
        items=(item,),
    )
