"""What one target Podman lacks, resolved before rendering: typed downgrades, never refusals.

``render`` renders ``for_target(spec, fmt, version)``; ``generate`` prints ``target_notes``:
one note per setting left out or turned off for the target, naming what stands in, so that
nothing an operator configured is lost silently. The versions come from ``psquadlet.schema``'s
rows (``flag_since``, ``NOTIFY_HEALTHY_SINCE``) and ``healgate``.
"""

from __future__ import annotations

import dataclasses

from psquadlet import healgate, quadlet_keys, schema
from psquadlet.model import Config, ContainerSpec


def for_target(spec: ContainerSpec, fmt: str, version: tuple[int, int, int]) -> ContainerSpec:
    """``spec`` with the values that depend on the target resolved (a typed downgrade).

    ``notify = "healthy-when-supported"`` becomes ``healthy`` where the target has it (Quadlet
    ``Notify=healthy`` from 5.0, ``podman run --sdnotify=healthy`` from 4.7) and a health
    check is set, else off (``--sdnotify=conmon``): never a refusal, so it never makes
    ``--format auto`` leave Quadlet either. ``health.on_failure`` is left out below Podman
    4.3 where psquadlet's health supervisor stands in for it (``healgate.stands_in``, the one
    place that decides it). ``target_notes`` says what was left out.
    """
    return _downgrade(spec, fmt, version)[0]


def _downgrade(
    spec: ContainerSpec, fmt: str, version: tuple[int, int, int]
) -> tuple[ContainerSpec, tuple[str, ...]]:
    """``for_target``'s spec, and one note per setting it left out or turned off."""
    notes: list[str] = []
    target = quadlet_keys.format_version(version)
    base = f"containers.{spec.name}"
    if spec.health is not None and healgate.stands_in(spec, version):
        if spec.health.on_failure != "none":
            row = schema.HEALTH["on_failure"]
            notes.append(
                f"{base}.health.on_failure = {spec.health.on_failure!r}: left out: Podman "
                f"{target} has no {row.flag} (needs "
                f"{quadlet_keys.format_version(row.flag_since)}); psquadlet-health.timer "
                "restarts the unhealthy container instead, within health.restart_budget"
            )
        spec = dataclasses.replace(spec, health=dataclasses.replace(spec.health, on_failure=""))
    if spec.notify == schema.NOTIFY_HEALTHY_WHEN_SUPPORTED:
        quadlet_since, flag_since = schema.NOTIFY_HEALTHY_SINCE
        since = quadlet_since if fmt == "quadlet" else flag_since
        checked = spec.health is not None and spec.health.cmd != "none"
        healthy = checked and version[:2] >= since
        if checked and not healthy:
            feature = "Notify=healthy" if fmt == "quadlet" else "--sdnotify=healthy"
            notes.append(
                f"{base}.notify: {feature} needs Podman {quadlet_keys.format_version(since)} "
                f"(target is {target}): the unit is ready once the container runs, "
                "not once it is healthy"
            )
        spec = dataclasses.replace(spec, notify=schema.NOTIFY_HEALTHY if healthy else "")
    return spec, tuple(notes)


def target_notes(
    config: Config, fmt: str, podman_version: tuple[int, int, int] | None
) -> tuple[str, ...]:
    """What ``for_target`` leaves out or turns off for this target, one note per setting."""
    if podman_version is None:  # the newest Podman: nothing to leave out
        return ()
    version = podman_version
    return tuple(n for spec in config.containers for n in _downgrade(spec, fmt, version)[1])
