"""The health kill below Podman 4.3, decided in one place (issue 18 item 1).

``--health-on-failure`` (Quadlet ``HealthOnFailure=``: 4.5) came with Podman 4.3. Below it
``render.for_target`` leaves ``health.on_failure`` out where psquadlet's health supervisor
(``psquadlet heal``, ``psquadlet-health.timer``) stands in, and ``generate`` says so
(``notes``); ``stop``, or a container without a restart budget, stays a refusal.
"""

from __future__ import annotations

from psquadlet import quadlet_keys, schema
from psquadlet.model import Config, ContainerSpec

STANDS_IN = ("none", "kill", "restart")
"""``on_failure`` values psquadlet's supervisor stands in for below ``schema.HEAL_SINCE``
(``none`` is Podman's default; ``stop`` has no stand-in and stays a refusal)."""


def stands_in(spec: ContainerSpec, version: tuple[int, int, int]) -> bool:
    """Whether ``on_failure`` is left out for a target without ``--health-on-failure``: the
    one place that decides the health kill below Podman 4.3 (``for_target`` applies it,
    ``notes`` says it). ``none`` always; ``kill``/``restart`` when psquadlet's
    supervisor restarts the container (``health.restart_budget``)."""
    health = spec.health
    if health is None or not health.on_failure or version[:2] >= schema.HEAL_SINCE:
        return False
    return health.on_failure == "none" or (health.on_failure in STANDS_IN and health.supervised)


def notes(config: Config, version: tuple[int, int, int] | None) -> tuple[str, ...]:
    """What ``generate`` says about the Podman features psquadlet stands in for."""
    target = version or (99, 0, 0)  # the newest, as render
    notes = []
    for spec in config.containers:
        if stands_in(spec, target) and spec.health and spec.health.on_failure != "none":
            notes.append(
                f"containers.{spec.name}.health.on_failure = {spec.health.on_failure!r}: Podman "
                f"{quadlet_keys.format_version(target)} has no --health-on-failure (4.3); "
                "psquadlet-health.timer restarts the unhealthy container instead, within "
                "health.restart_budget"
            )
    return tuple(notes)
