"""The health kill below Podman 4.3, decided in one place (issue 18 item 1).

``--health-on-failure`` (Quadlet ``HealthOnFailure=``: 4.5) came with Podman 4.3. Below it
``downgrade.for_target`` leaves ``health.on_failure`` out where psquadlet's health supervisor
(``psquadlet heal``, ``psquadlet-health.timer``) stands in, and ``downgrade.target_notes``
says so; ``stop``, or a container without a restart budget, stays a refusal.
"""

from __future__ import annotations

from psquadlet import schema
from psquadlet.model import ContainerSpec

STANDS_IN = ("none", "kill", "restart")
"""``on_failure`` values psquadlet's supervisor stands in for below ``schema.HEAL_SINCE``
(``none`` is Podman's default; ``stop`` has no stand-in and stays a refusal)."""


def stands_in(spec: ContainerSpec, version: tuple[int, int, int]) -> bool:
    """Whether ``on_failure`` is left out for a target without ``--health-on-failure``: the
    one place that decides the health kill below Podman 4.3 (``downgrade`` applies it
    and says it). ``none`` always; ``kill``/``restart`` when psquadlet's
    supervisor restarts the container (``health.restart_budget``)."""
    health = spec.health
    if health is None or not health.on_failure or version[:2] >= schema.HEAL_SINCE:
        return False
    return health.on_failure == "none" or (health.on_failure in STANDS_IN and health.supervised)
