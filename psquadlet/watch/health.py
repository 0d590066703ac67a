"""The health gate: is the unit healthy on the new image?

Healthy: unit active, container running the expected image, and the health command (if any)
exits 0, retried every ``Deps.health_interval`` until ``Target.health_timeout``.
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
