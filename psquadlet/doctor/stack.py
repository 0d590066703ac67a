"""Which path psquadlet takes on this host (issue 18 item 5): the Podman family, the unit
format ``generate --format auto`` writes, what kills an unhealthy container, and the systemd
adapter the watcher uses.

The answers come from the code that acts on them, never from a second table: the format from
``generate.choose_format``/``generate.render_units``, the health kill from
``healgate.stands_in`` and the schema row of ``health.on_failure``, the adapter from
``deps.systemd_adapter`` (the ``Host.systemd_adapter`` probe, which a test replaces).
"""

from __future__ import annotations

from psquadlet import generate, healgate, host, quadlet_keys, schema
from psquadlet.doctor.context import Context
from psquadlet.doctor.report import PASS, SKIP, WARN, Check
from psquadlet.errors import PsquadletError

ID = "stack"


def _health_kill(ctx: Context, fmt: str, version: tuple[int, int, int]) -> str:
    """Who acts on an unhealthy container, per container with a health check."""
    row = schema.HEALTH["on_failure"]
    podman = f"Podman's {'HealthOnFailure=' if fmt == 'quadlet' else row.flag}"
    ways = []
    for spec in ctx.config.containers:
        health = spec.health
        if health is None or not health.cmd or health.cmd == "none":
            continue
        if health.on_failure not in ("", "none") and not healgate.stands_in(spec, version):
            way = f"{podman} ({health.on_failure})"
        elif health.supervised:
            way = (
                "psquadlet's health supervisor (psquadlet-health.timer: "
                f"{health.restart_budget} restarts per {health.budget_window} s, then it keeps "
                "running)"
            )
        else:
            way = "nothing: the check is only reported"
        ways.append(f"{spec.name}: {way}")
    return "; ".join(ways) or "none (no container has a health check)"


def check_stack(ctx: Context) -> Check:
    """Podman family, Quadlet or .service, the health kill and the systemd adapter."""
    code, out = ctx.host.run_program("podman", "--version")
    version = host.podman_version_in(out) if code == 0 else None
    adapter = ctx.host.systemd_adapter()
    adapter_text = adapter or "unknown (see the 'watcher' check)"
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
            "the 'watcher' check says why no systemd adapter can be chosen",
            items=(item,),
        )
    return Check(ID, PASS, summary, items=(item,))
