"""Health events from systemd's own hooks, so that the daemon and the timer mode see them.

When ``[notifications]`` has channels or ``[metrics]`` is set, ``generate`` adds two lines to
each container unit (``ownhooks.health_hooks``)::

    ExecStopPost=-PYTHON -m psquadlet notify -c CONFIG --hook --event unhealthy --unit %n
    ExecStartPost=-PYTHON -m psquadlet notify -c CONFIG --hook --event restarted --unit %n

``OnFailure=`` alone would not do: a unit enters ``failed`` only when systemd gives up
(with ``Restart=``, after the start limit), while a container that Podman's
``HealthOnFailure=kill`` killed is simply restarted. So:

- the stop hook reads ``$SERVICE_RESULT`` (``success`` for a stop that was asked for: an
  operator's, or the watcher's own restart during an upgrade) and, for anything else
  (``exit-code``, ``signal``, ``watchdog``, ``timeout``, ...), reports ``unhealthy`` with
  ``$EXIT_CODE``/``$EXIT_STATUS`` and leaves a mark ``STATE_DIR/hooks/UNIT.stopped``;
- the start hook does nothing without that mark; with it, it reports ``restarted`` and starts
  ``notify --hook --event healthy`` in the background (``healthy_hook``), which waits for the
  container's health check to pass (``podman healthcheck run``, bounded by the check's own
  start period, interval and retries) and reports ``healthy``. A container without a health
  check is reported healthy once it runs again; with ``notify = "healthy"`` systemd only
  runs the start hook once Podman said so.

Each report goes through ``commands.send_event`` (queued, flushed at once, metrics updated).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from psquadlet import model
from psquadlet.errors import PsquadletError, UsageError
from psquadlet.fsutil import atomic_write, read_text, safe_folder
from psquadlet.host import Runner, run_command
from psquadlet.notifications.commands import container_for, send_event
from psquadlet.notifications.deliver import ChannelResult
from psquadlet.watch.events import EventKind
from psquadlet.watch.heal import OUTPUT_MAX, HealState, from_json
from psquadlet.watch.healrun import STATE_FILE as HEAL_STATE_FILE
from psquadlet.watch.healrun import health_log

HOOKS_FOLDER = "hooks"
NORMAL_STOP = ("", "success")
HEALTH_WAIT_MAX = 900.0  # seconds: never wait for a health check longer than this


def _mark(config: model.Config, unit: str) -> Path:
    return Path(config.watch.state_dir) / HOOKS_FOLDER / f"{unit}.stopped"


def stopped(config: model.Config, unit: str, env: Mapping[str, str]) -> list[ChannelResult]:
    """ExecStopPost: a stop that systemd did not ask for is ``unhealthy``; else nothing."""
    spec = container_for(config, unit)
    result = env.get("SERVICE_RESULT", "")
    if result in NORMAL_STOP:
        return []
    how = " ".join(v for v in (env.get("EXIT_CODE", ""), env.get("EXIT_STATUS", "")) if v)
    detail = (
        f"The container stopped on its own (systemd: {result}{', ' + how if how else ''}); "
        "systemd restarts it as the unit's Restart= says. A failed health check with "
        "HealthOnFailure=kill ends this way."
    )
    output = last_check_output(config, spec)
    if output:
        detail += f"\n\nThe health check's last output:\n{output}"
    mark = _mark(config, spec.unit_name)
    try:
        safe_folder(mark.parent, "hooks folder")
        atomic_write(mark, json.dumps({"time": time.time(), "detail": detail}) + "\n")
        unmarked = ""
    except (OSError, PsquadletError) as exc:  # reported after the event went out
        unmarked = f"cannot leave the restart mark {mark} ({getattr(exc, 'strerror', '') or exc})"
    results = send_event(config, EventKind.UNHEALTHY, spec.unit_name, detail)
    if unmarked:
        raise PsquadletError(f"{unmarked}: the next start will not be reported as a restart")
    return results


def last_check_output(
    config: model.Config, spec: model.ContainerSpec, run: Runner = run_command
) -> str:
    """The health check's last output: Podman's health log while the container still exists,
    else what the health supervisor last saw (``STATE_DIR/health.json``); "" when neither."""
    if spec.health is None or not spec.health.cmd or spec.health.cmd == "none":
        return ""
    log = health_log(run, spec.effective_container_name)
    if log.output.strip() and log.status != "healthy":
        return log.output.strip()[-OUTPUT_MAX:]
    try:
        raw = json.loads(read_text(Path(config.watch.state_dir) / HEAL_STATE_FILE) or "{}")
        return from_json(raw).get(spec.name, HealState()).output
    except (OSError, ValueError):
        return ""


def started(config: model.Config, unit: str, python: str = sys.executable) -> list[ChannelResult]:
    """ExecStartPost: after a stop of its own, ``restarted``, then wait for ``healthy``."""
    spec = container_for(config, unit)
    mark = _mark(config, spec.unit_name)
    if not mark.exists():
        return []  # a start after a stop that was asked for: nothing to report
    try:
        before = json.loads(read_text(mark) or "{}")
    except (OSError, ValueError):
        before = {}
    with contextlib.suppress(FileNotFoundError):
        mark.unlink()
    why = str(before.get("detail", "")) if isinstance(before, dict) else ""
    results = send_event(
        config, EventKind.RESTARTED, spec.unit_name, f"systemd started the unit again. {why}"
    )
    if spec.notify == "healthy" or spec.health is None or not spec.health.cmd:
        return results + send_event(
            config, EventKind.HEALTHY, spec.unit_name, _healthy_detail(spec)
        )
    # Wait in the background: the unit is started, its health check has yet to pass. The
    # waiter stays in the unit's cgroup, so stopping the unit ends it too.
    argv = [
        python,
        "-m",
        "psquadlet",
        "notify",
        "-c",
        config.source,
        "--hook",
        "--event",
        "healthy",
    ]
    subprocess.Popen([*argv, "--unit", spec.unit_name], start_new_session=True)
    return results


def _healthy_detail(spec: model.ContainerSpec) -> str:
    if spec.health is None or not spec.health.cmd:
        return "The container runs again (it has no health check)."
    return "The container's health check passes again."


def health_budget(health: model.HealthSpec) -> float:
    """How long a restarted container may take to pass its check: start period, then
    ``retries + 1`` intervals and time-outs; at most ``HEALTH_WAIT_MAX``."""
    tries = health.retries + 1
    return min(health.start_period + tries * (health.interval + health.timeout), HEALTH_WAIT_MAX)


def healthy(
    config: model.Config, unit: str, run: Sequence[str] = ("podman",)
) -> list[ChannelResult]:
    """``--hook --event healthy``: poll ``podman healthcheck run`` until it passes, then report."""
    spec = container_for(config, unit)
    health = spec.health
    if health is None or not health.cmd:
        return send_event(config, EventKind.HEALTHY, spec.unit_name, _healthy_detail(spec))
    deadline = time.monotonic() + health_budget(health)
    container = spec.effective_container_name
    pause = max(1.0, min(float(health.interval), 10.0))
    while time.monotonic() < deadline:
        try:
            code = subprocess.run(
                [*run, "healthcheck", "run", container],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=max(float(health.timeout), 1.0) + 5,
                check=False,
            ).returncode
        except (OSError, subprocess.TimeoutExpired):
            code = 1
        if code == 0:
            return send_event(config, EventKind.HEALTHY, spec.unit_name, _healthy_detail(spec))
        time.sleep(pause)
    return []  # still unhealthy: Podman's HealthOnFailure= and systemd's Restart= act next


def run_hook(
    config: model.Config, kind: EventKind, unit: str, env: Mapping[str, str] | None = None
) -> list[ChannelResult]:
    """What ``psquadlet notify --hook --event KIND --unit UNIT`` runs."""
    if kind is EventKind.UNHEALTHY:
        return stopped(config, unit, hook_env() if env is None else env)
    if kind is EventKind.RESTARTED:
        return started(config, unit)
    if kind is EventKind.HEALTHY:
        return healthy(config, unit)
    raise UsageError("--hook takes --event unhealthy (ExecStopPost), restarted (ExecStartPost)")


def hook_env() -> dict[str, str]:
    return {k: os.environ.get(k, "") for k in ("SERVICE_RESULT", "EXIT_CODE", "EXIT_STATUS")}
