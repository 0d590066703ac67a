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

from psquadlet import perfsonar
from psquadlet.tomlwriter import inline, key, key_path

PERFSONAR_TESTPOINT = "perfsonar-testpoint"
TESTPOINT_REPOSITORY = "perfsonar/testpoint"

# Where the preset's image comes from (``registry = ...``). Since February 2025 upstream's only
# automated publishing (.github/workflows/publish_docker.yml in
# perfsonar/perfsonar-testpoint-docker) pushes to ghcr.io, multi-arch (amd64 and arm64): the
# moving tags latest and systemd from master, vX.Y.Z and vX.Y.Z-systemd for releases. Docker
# Hub's copy, which the upstream guide names, may no longer move. Any mirror host works too.
DEFAULT_REGISTRY = "ghcr.io"
UPSTREAM_REGISTRIES = ("ghcr.io", "docker.io")
REGISTRY_REASON = (
    "upstream's CI (publish_docker.yml in perfsonar/perfsonar-testpoint-docker) pushes to "
    "ghcr.io since 2025, multi-arch amd64+arm64: latest and systemd from master, vX.Y.Z and "
    "vX.Y.Z-systemd for releases; Docker Hub's copy may no longer move"
)

HEALTH_CMD = ("pscheduler", "troubleshoot", "--quick")
"""What OSG's health monitor runs; it exits non-zero when pScheduler does not answer."""
HEALTH: dict[str, Any] = {
    "cmd": list(HEALTH_CMD),
    "interval": "1m",
    "timeout": "30s",
    "retries": 3,
    "start_period": "5m",
    "restart_budget": 3,
}
"""The preset's Podman health check, in TOML spelling (``[containers.NAME.health]``). Podman
takes no action on failure (no ``on_failure``): psquadlet's supervisor restarts an unhealthy
testpoint at most ``restart_budget`` times per ``budget_window`` (1h), as OSG's monitor (at
most 3 an hour), then leaves it running, unhealthy, and retries on a backoff (1h doubling to
24h: ``retry_after``, ``retry_max``)."""
START_LIMIT_INTERVAL = "1h"
START_LIMIT_BURST = 4
TIMEOUT_START = "20m"
"""A first start may pull the image (a large one on a slow link)."""

# preset name -> default variant
DEFAULT_VARIANTS: dict[str, str] = {PERFSONAR_TESTPOINT: "systemd"}


def testpoint_image(registry: str | None, tag: str) -> str:
    return f"{registry or DEFAULT_REGISTRY}/{TESTPOINT_REPOSITORY}:{tag}"


def _perfsonar_testpoint(variant: str, container: str, registry: str | None) -> dict[str, Any]:
    # The folders perfSONAR changes at run time, each a named volume seeded from the image
    # (see psquadlet.perfsonar.state_volumes; the first is the pSConfig folder).
    state = [f"{volume}:{folder}" for volume, folder in perfsonar.state_volumes(container)]
    if variant == "systemd":
        # docker run -td --name perfsonar-testpoint --net=host --tmpfs /run --tmpfs /run/lock
        #   --tmpfs /tmp -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns host
        #   --cap-add CAP_NET_RAW perfsonar/testpoint:systemd
        values: dict[str, Any] = {
            "image": testpoint_image(registry, "systemd"),
            "description": "perfSONAR testpoint (systemd image)",
            "network": "host",
            "tmpfs": ["/run", "/run/lock", "/tmp"],
            "volumes": ["/sys/fs/cgroup:/sys/fs/cgroup:rw", *state],
            "cgroupns": "host",
            "cap_add": ["CAP_NET_RAW"],
            "tty": True,
        }
    else:
        # docker run -d --name perfsonar-testpoint --net=host --cap-add CAP_NET_RAW
        #   perfsonar/testpoint
        values = {
            "image": testpoint_image(registry, "latest"),
            "description": "perfSONAR testpoint (supervisord image)",
            "network": "host",
            "volumes": state,
            "cap_add": ["CAP_NET_RAW"],
        }
    # From the compose files: TZ, restart on failure; the pSConfig volume is above.
    values["environment"] = {"TZ": "UTC"}
    # Continuous health (docs/operations.md, "Health between upgrades", justifies every
    # number): Podman runs the check, psquadlet heal restarts an unhealthy testpoint under its
    # budget and then leaves it running; systemd restarts a crashed one, at most
    # START_LIMIT_BURST starts per START_LIMIT_INTERVAL. No Notify=healthy: Podman would hold
    # every start job of a testpoint that stays unhealthy until TimeoutStartSec, and systemd
    # would then stop it.
    values["health"] = dict(HEALTH)
    values["unit"] = {
        "start_limit_interval": START_LIMIT_INTERVAL,
        "start_limit_burst": START_LIMIT_BURST,
    }
    values["service"] = {"restart": "on-failure", "timeout_start": TIMEOUT_START}
    values["update"] = {
        "health_cmd": list(HEALTH_CMD),
        # upstream's release tags: vX.Y.Z (supervisord) and vX.Y.Z-systemd; used when
        # track = "patch" | "minor" | "major" (the default "digest" follows the moving tag)
        "tag_pattern": "v{version}-systemd" if variant == "systemd" else "v{version}",
    }
    return values


_VARIANTS: dict[str, tuple[str, ...]] = {PERFSONAR_TESTPOINT: ("systemd", "supervisord")}


def preset_names() -> tuple[str, ...]:
    return tuple(sorted(_VARIANTS))


def variants(preset: str) -> tuple[str, ...]:
    return _VARIANTS[preset]


def preset_values(
    preset: str, variant: str | None, container: str, registry: str | None = None
) -> dict[str, Any]:
    """A fresh copy of the preset's keys for the container named ``container``; the image
    from *registry* (default ``DEFAULT_REGISTRY``).

    Raises KeyError for an unknown preset or variant (the loader turns that into a located
    error with a suggestion).
    """
    if preset not in _VARIANTS:
        raise KeyError(preset)
    chosen = variant or DEFAULT_VARIANTS[preset]
    if chosen not in _VARIANTS[preset]:
        raise KeyError(chosen)
    return copy.deepcopy(_perfsonar_testpoint(chosen, container, registry))


# ---------------------------------------------------------------------------------------------
# psquadlet init: a commented configuration that reproduces the preset


_OPTIONAL_KEYS = """\
# Other settings (defaults shown; see CONFIGURATION in psquadlet(1), docs/configuration.md):
# container_name = ""            # default: the table name
# command = []                   # arguments after the image
# hostname = ""
# ports = []                     # "[IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]"
# environment_files = []
# cap_drop = []
# devices = []
# labels = {}
# ulimits = []                   # "nofile=1024:2048"
# stop_signal = ""
# stop_timeout = 0               # seconds; 0: podman's default
# pull = "missing"               # missing | always | newer | never (unset: podman default)
# podman_args = []               # raw podman run arguments, one word each
"""

_UPDATE_COMMENTS = """\
# policy = "auto"                # auto | notify | off
# schedule = "03:00"             # daily, local time; or interval = "6h"
# randomized_delay = "1h"
# min_age = "0s"
# health_timeout = "5m"
# keep_images = 1
# track = "digest"               # digest (follow the tag) | patch | minor | major (releases)
# prerelease = false             # also follow -alpha/-beta/-rc releases
"""

# Alerts and metrics are off until configured; the template shows one working example of
# each, commented out (issue 21 item 5), so an operator who starts from `init` learns that
# they exist. `_SINK_EXAMPLES` with the leading "# " removed parses (a test checks that).
_SINK_EXAMPLES = """\
# Alerts (optional; needs the "notify" extra, Apprise): every event to one e-mail channel.
# The channel's URL, with its password, goes into the URLs file (root, mode 0600), e.g.
#   ops-mail = "mailtos://alerts:PASSWORD@smtp.example.org?to=ops@example.org"
# [notifications]
# urls_file = "/etc/psquadlet/notification-urls.toml"
# quiet_period = "1d"            # a repeat of the same event at most once a day
#
# [notifications.channels.ops-mail]  # every event; or events = ["rolled-back", ...]

# Metrics (optional; needs the "metrics" extra, prometheus_client): a textfile for
# prometheus-node-exporter's textfile collector (Debian's folder shown).
# [metrics]
# textfile_dir = "/var/lib/prometheus/node-exporter"
"""


def sink_examples() -> str:
    """The commented `[notifications]` and `[metrics]` examples at the end of `init`'s file."""
    return _SINK_EXAMPLES


def init_text(variant: str | None = None, container: str = PERFSONAR_TESTPOINT) -> str:
    """The file ``psquadlet init`` writes: every preset value spelled out, with comments.

    It parses to exactly the preset's configuration (a test checks that), so an operator can
    start from it and change only what differs.
    """
    chosen = variant or DEFAULT_VARIANTS[PERFSONAR_TESTPOINT]
    values = preset_values(PERFSONAR_TESTPOINT, chosen, container)
    subtables = {k: values.pop(k) for k in ("health", "unit", "service", "update") if k in values}
    other = "supervisord" if chosen == "systemd" else "systemd"
    lines = [
        "# psquadlet configuration: one [containers.NAME] table per container run by systemd.",
        "# Check it with 'psquadlet validate', write the units with 'psquadlet generate',",
        "# then 'systemctl daemon-reload' and 'systemctl start NAME'.",
        "",
        "# The upgrade watcher (psquadlet watch):",
        "# [watch]",
        '# state_dir = "/var/lib/psquadlet"',
        "",
        f"[{key_path(('containers', container))}]",
        f'preset = "{PERFSONAR_TESTPOINT}"   # defaults for every key not set here',
        f'variant = "{chosen}"'.ljust(33)
        + f'# or "{other}"'
        + (" (hosts without cgroup v2)" if other == "supervisord" else " (recommended)"),
        f'# registry = "{DEFAULT_REGISTRY}"'.ljust(33)
        + '# default; or "docker.io", or a mirror host',
        "# ghcr.io: upstream's CI (publish_docker.yml in perfsonar/perfsonar-testpoint-docker)",
        "#   pushes there since 2025, multi-arch amd64+arm64: latest and systemd from master,",
        "#   vX.Y.Z and vX.Y.Z-systemd for releases. Docker Hub's copy may no longer move.",
        "",
        "# The upstream docker run line, as this preset spells it (edit freely):",
    ]
    for setting, value in values.items():
        lines.append(f"{key(setting)} = {inline(value)}")
    lines.append("")
    lines.extend(_OPTIONAL_KEYS.splitlines())
    for name, table in subtables.items():
        lines.append("")
        lines.append(f"[{key_path(('containers', container, name))}]")
        for setting, value in table.items():
            lines.append(f"{key(setting)} = {inline(value)}")
        if name == "update":
            lines.extend(_UPDATE_COMMENTS.splitlines())
    lines.append("")
    lines.extend(_SINK_EXAMPLES.splitlines())
    return "\n".join(lines) + "\n"
