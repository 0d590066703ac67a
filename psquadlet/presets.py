"""Built-in presets: the upstream perfSONAR ``docker run`` lines, as configuration defaults.

A preset is a table of ordinary configuration keys (the same spelling an operator writes in
TOML), so that ``psquadlet init`` can print it and the file it prints produces exactly the
same units. The config loader merges: a key the operator sets wins; a list or map the operator
sets replaces the preset's; the sub-tables (``health``, ``unit``, ``service``, ``install``,
``update``) merge key by key.
"""

from __future__ import annotations

import copy
from typing import Any

PERFSONAR_TESTPOINT = "perfsonar-testpoint"
PSCONFIG_DIR = "/etc/perfsonar/psconfig"

# preset name -> default variant
DEFAULT_VARIANTS: dict[str, str] = {PERFSONAR_TESTPOINT: "systemd"}


def psconfig_volume(container: str) -> str:
    """The named volume holding a testpoint's pSConfig folder (per container, never shared)."""
    return f"{container}-psconfig"


def _perfsonar_testpoint(variant: str, container: str) -> dict[str, Any]:
    # What both upstream docker run lines and the compose files share.
    values: dict[str, Any] = {
        "network": "host",
        "cap_add": ["CAP_NET_RAW"],
        "environment": {"TZ": "UTC"},
        "service": {"restart": "on-failure"},
        "update": {"health_cmd": ["pscheduler", "troubleshoot", "--quick"]},
    }
    psconfig = f"{psconfig_volume(container)}:{PSCONFIG_DIR}"
    if variant == "systemd":
        # docker run -td --name perfsonar-testpoint --net=host --tmpfs /run --tmpfs /run/lock
        #   --tmpfs /tmp -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns host
        #   --cap-add CAP_NET_RAW perfsonar/testpoint:systemd
        values.update(
            {
                "image": "docker.io/perfsonar/testpoint:systemd",
                "description": "perfSONAR testpoint (systemd image)",
                "tmpfs": ["/run", "/run/lock", "/tmp"],
                "volumes": ["/sys/fs/cgroup:/sys/fs/cgroup:rw", psconfig],
                "cgroupns": "host",
                "tty": True,
            }
        )
    else:
        # docker run -d --name perfsonar-testpoint --net=host --cap-add CAP_NET_RAW
        #   perfsonar/testpoint
        values.update(
            {
                "image": "docker.io/perfsonar/testpoint:latest",
                "description": "perfSONAR testpoint (supervisord image)",
                "volumes": [psconfig],
            }
        )
    return values


_VARIANTS: dict[str, tuple[str, ...]] = {PERFSONAR_TESTPOINT: ("systemd", "supervisord")}


def preset_names() -> tuple[str, ...]:
    return tuple(sorted(_VARIANTS))


def variants(preset: str) -> tuple[str, ...]:
    return _VARIANTS[preset]


def preset_values(preset: str, variant: str | None, container: str) -> dict[str, Any]:
    """A fresh copy of the preset's keys for the container named ``container``.

    Raises KeyError for an unknown preset or variant (the loader turns that into a located
    error with a suggestion).
    """
    if preset not in _VARIANTS:
        raise KeyError(preset)
    chosen = variant or DEFAULT_VARIANTS[preset]
    if chosen not in _VARIANTS[preset]:
        raise KeyError(chosen)
    return copy.deepcopy(_perfsonar_testpoint(chosen, container))
