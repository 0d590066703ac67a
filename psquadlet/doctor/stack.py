"""Which path psquadlet takes on this host (issue 18 item 5): the Podman family, the unit
format ``generate --format auto`` writes, what kills an unhealthy container, and the systemd
adapter the watcher uses.

The answers come from the code that acts on them, never from a second table: the format from
``generate.choose_format``/``generate.render_units``, the health kill from the schema row of
``health.on_failure`` (``flag_since``, ``stand_in``), the adapter from ``deps.systemd_adapter``
(the ``Host.systemd_adapter`` probe, which a test replaces).
"""

from __future__ import annotations

from psquadlet import generate, host, quadlet_keys, schema
from psquadlet.doctor.context import Context
from psquadlet.doctor.report import PASS, SKIP, WARN, Check
from psquadlet.errors import PsquadletError

ID = "stack"


def _health_kill(ctx: Context, fmt: str, version: tuple[int, int, int]) -> str:
    row = schema.HEALTH["on_failure"]
    killed = [
        spec.name
        for spec in ctx.config.containers
        if spec.health is not None and spec.health.cmd != "none" and spec.health.on_failure
    ]
    if not killed:
        return "none (no container sets health.on_failure)"
    if version[:2] < row.flag_since:
        return "psquadlet's health supervisor (Podman has no --health-on-failure before 4.3)"
    return f"Podman's {'HealthOnFailure=' if fmt == 'quadlet' else row.flag}"


def check_stack(ctx: Context) -> Check:
    """Podman family, Quadlet or .service, the health kill and the systemd adapter."""
    code, out = ctx.host.run_program("podman", "--version")
    version = host.podman_version_in(out) if code == 0 else None
    adapter = ctx.host.systemd_adapter()
    adapter_text = adapter or "none (the watcher cannot run: install python3-pystemd)"
    if version is None:
        return Check(ID, SKIP, f"no Podman found; systemd adapter: {adapter_text}")
    shown = quadlet_keys.format_version(version)
    try:
        fmt, target, _note = generate.choose_format("auto", shown)
        fmt, _units, _fallback = generate.render_units(ctx.config, fmt, target, False, True)
    except PsquadletError as exc:
        return Check(ID, SKIP, f"Podman {shown}: the configuration does not render: {exc}")
    unit = "Quadlet .container" if fmt == "quadlet" else "plain .service"
    kill = _health_kill(ctx, fmt, version)
    item = {
        "podman": shown,
        "family": f"Podman {version[0]}",
        "format": fmt,
        "health_kill": kill,
        "systemd_adapter": adapter,
    }
    summary = (
        f"Podman {version[0]} family ({shown}): {unit}; health kill: {kill}; "
        f"systemd adapter: {adapter_text}"
    )
    if adapter is None:
        return Check(
            ID,
            WARN,
            summary,
            "install python3-pystemd (or 'pip install pystemd' in psquadlet's venv) for the "
            "upgrade watcher",
            items=(item,),
        )
    return Check(ID, PASS, summary, items=(item,))
