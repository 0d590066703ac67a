"""The health gate: is the unit healthy on the new image? And the watcher's own starts.

Healthy: unit active, container running the expected image, and the health command (if any)
exits 0, retried every ``Deps.health_interval`` until ``Target.health_timeout``.

Podman's health check (``HealthOnFailure=kill``) and systemd's ``Restart=`` with a start limit
keep a testpoint up between passes; the watcher's own restarts and starts are deliberate, so
they must not spend that crash-loop budget nor be refused by it: each is preceded by
``reset-failed`` (``restart_unit``, ``start_unit``). A unit found ``failed`` (its start limit
hit) gets one ``reset-failed`` + start per pass (``start_if_failed``), never a loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psquadlet.watch.interfaces import ImagesError, UnitError
from psquadlet.watch.targets import Target

if TYPE_CHECKING:
    from psquadlet.watch.core import Deps


def health_gate(t: Target, image_id: str, deps: Deps) -> str:
    """ "" when the unit is healthy on *image_id*, else why not (after retrying until timeout).

    Healthy: unit active, container running the new image, and the health command (if any)
    exits 0. Without a health command the container must stay up for two observations one
    interval apart, so an image that dies right after start is caught too.
    """
    deadline = deps.clock.monotonic() + t.health_timeout
    reason = "no observation"
    seen_up = 0
    while True:
        reason = _observe(t, image_id, deps, deadline - deps.clock.monotonic())
        if not reason:
            seen_up += 1
            if t.health_cmd or seen_up >= 2:
                return ""
        else:
            seen_up = 0
            if reason.startswith("unit failed"):
                return reason
        if deps.clock.monotonic() >= deadline:
            return f"not healthy within {t.health_timeout}s: {reason}"
        deps.clock.sleep(deps.health_interval)


def _observe(t: Target, image_id: str, deps: Deps, remaining: float) -> str:
    try:
        active = deps.units.active_state(t.unit)
    except UnitError as e:
        return f"cannot read unit state: {e}"
    if active == "failed":
        return f"unit failed ({t.unit})"
    if active != "active":
        return f"unit is {active}"
    try:
        ci = deps.images.container_image(t.container)
    except ImagesError as e:
        return f"cannot inspect container: {e}"
    if ci is None or not ci.running:
        return f"container {t.container} is not running"
    if image_id and ci.image_id != image_id:
        return f"container runs image {ci.image_id[:12]}, not the new {image_id[:12]}"
    if not t.health_cmd:
        return ""
    try:
        res = deps.images.exec(t.container, t.health_cmd, max(remaining, 1.0))
    except ImagesError as e:
        return f"health command could not run: {e}"
    if res.exit_code != 0:
        tail = res.output.strip().splitlines()[-1:] if res.output.strip() else []
        detail = f": {tail[0][:200]}" if tail else ""
        return f"health command exited {res.exit_code}{detail}"
    return ""


def _reset_failed(t: Target, deps: Deps) -> None:
    try:
        deps.units.reset_failed(t.unit)
    except UnitError as e:  # the restart or start that follows says what is wrong
        deps.log.warning(f"{t.unit}: reset-failed: {e}")


def restart_unit(t: Target, deps: Deps) -> None:
    """``reset-failed``, then restart and wait for the job (raises ``UnitError``)."""
    _reset_failed(t, deps)
    deps.units.restart(t.unit, deps.job_timeout)


def start_unit(t: Target, deps: Deps) -> None:
    """Start the unit unless it is active; a failed one is ``reset-failed`` first."""
    if deps.units.active_state(t.unit) == "active":
        return
    _reset_failed(t, deps)
    deps.units.start(t.unit, deps.job_timeout)


def start_if_failed(t: Target, deps: Deps) -> str | None:
    """One ``reset-failed`` + start of a unit systemd gave up on (e.g. after its start limit).

    None: the unit is not failed (nothing done); "": it started again; else why it did not.
    Once per pass, so a broken host is retried at the watcher's schedule, never in a loop.
    """
    try:
        if deps.units.active_state(t.unit) != "failed":
            return None
    except UnitError:
        return None
    deps.log.warning(f"{t.name}: {t.unit} is failed; reset-failed and one start")
    deps.set_status(f"starting failed {t.unit}")
    try:
        start_unit(t, deps)
        # A start job that failed may leave the unit "activating": systemd's own restart.
        state = deps.units.active_state(t.unit)
    except UnitError as e:
        return f"{t.unit} was failed and did not start again: {e}"
    if state != "active":
        return f"{t.unit} was failed and did not start again: it is {state}"
    return ""
