"""The validated configuration: frozen, hashable data that every other layer reads.

Only ``psquadlet.config`` builds these from TOML (``psquadlet import`` builds them from docker
run lines and compose files). Everything here is already checked, so the renderer and the
watcher never re-validate. Lists are tuples and maps are sorted tuples of pairs, so that two
equal configurations compare and hash equal whatever order the input had. Durations are int
seconds.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from psquadlet import imageref
from psquadlet.perfsonar.spec import PerfsonarSpec

if TYPE_CHECKING:  # their modules import the model's helpers: a type-only reference
    from psquadlet.metrics import MetricsSettings
    from psquadlet.notifications.settings import NotificationSettings

Pairs = tuple[tuple[str, str], ...]
"""A map, as sorted (key, value) pairs."""

Extra = tuple[tuple[str, tuple[str, ...]], ...]
"""Raw unit-file keys: sorted (Key, (value, value...)); each value becomes one ``Key=`` line."""

DEFAULT_STATE_DIR = "/var/lib/psquadlet"
"""root's state folder (the watcher's unit: ``StateDirectory=psquadlet``)."""
BUILTIN_SOURCE = "<built-in default>"
"""``Config.source`` of the built-in default configuration."""


def default_state_dir(uid: int | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``[watch] state_dir`` when the configuration sets none: the one rule for everyone.

    root: ``/var/lib/psquadlet``. Anyone else (the ``--user`` watcher, hooks, ``block``/``pin``
    run by that user): ``$XDG_STATE_HOME/psquadlet``, by the XDG Base Directory spec
    ``~/.local/state`` when the variable is unset, empty or not absolute. ``HOME`` comes from
    the password database when the environment has none (``runuser``, cron).
    """
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        return DEFAULT_STATE_DIR
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg.startswith("/"):
        return os.path.join(xdg, "psquadlet")
    home = env.get("HOME", "")
    if not home.startswith("/"):
        try:
            home = pwd.getpwuid(uid).pw_dir
        except KeyError:  # a uid without an entry: nowhere of its own
            return DEFAULT_STATE_DIR
    return os.path.join(home, ".local", "state", "psquadlet")


def pairs(mapping: dict[str, str]) -> Pairs:
    """The canonical Pairs form of a dict."""
    return tuple(sorted(mapping.items()))


def field_defaults(cls: type) -> dict[str, Any]:
    """Each field's default (of a dataclass): the one place a setting's default value lives."""
    result: dict[str, Any] = {}
    for item in fields(cls):
        if item.default is not MISSING:
            result[item.name] = item.default
        elif item.default_factory is not MISSING:
            result[item.name] = item.default_factory()
    return result


@dataclass(frozen=True)
class WatchSettings:
    """Settings of the upgrade watcher as a whole (``[watch]``)."""

    state_dir: str = field(default_factory=default_state_dir)
    auth_file: str = ""
    parallel: int = 4
    enabled: bool = True
    """``generate`` writes the watcher's units and makes the containers' units want them."""
    mode: str = "daemon"
    """``daemon`` (psquadlet-watch.service) or ``timer`` (psquadlet-upgrade.timer)."""


@dataclass(frozen=True)
class RegistrySettings:
    """Per-registry settings (``[registries."HOST[:PORT]"]``)."""

    host: str
    tls_verify: bool = True


@dataclass(frozen=True)
class VolumeSpec:
    """A named Podman volume, rendered as ``NAME.volume`` with ``VolumeName=NAME``."""

    name: str
    driver: str = ""
    options: tuple[str, ...] = ()
    labels: Pairs = ()
    copy: bool = True


@dataclass(frozen=True)
class VolumeMount:
    """One ``SRC:DST[:OPTS]`` entry of ``volumes``.

    An absolute (or ``./``-relative, resolved by the caller) source is a bind mount; any other
    source is the name of a named volume, which gets its own ``.volume`` unit.
    """

    source: str
    target: str
    options: tuple[str, ...] = ()

    @property
    def is_named(self) -> bool:
        return not self.source.startswith(("/", "."))

    def __str__(self) -> str:
        text = f"{self.source}:{self.target}"
        if self.options:
            text += ":" + ",".join(self.options)
        return text


@dataclass(frozen=True)
class HealthSpec:
    """Podman's own health check (``HealthCmd=`` and friends), not the watcher's gate."""

    cmd: str | tuple[str, ...]
    """A string runs through ``/bin/sh -c``; a tuple is the exec form."""
    interval: int = 30
    timeout: int = 30
    retries: int = 3
    start_period: int = 0
    on_failure: str = ""
    # psquadlet's health supervisor (psquadlet.watch.heal), not Podman's:
    restart_budget: int = 0
    """Restarts of an unhealthy container per ``budget_window`` (0: none)."""
    budget_window: int = 3600
    retry_after: int = 3600
    """Once the budget is spent: one restart after this, doubling up to ``retry_max``."""
    retry_max: int = 86400

    @property
    def supervised(self) -> bool:
        """psquadlet's supervisor watches this check (a command and a restart budget)."""
        return bool(self.cmd) and self.cmd != "none" and self.restart_budget > 0


@dataclass(frozen=True)
class UnitSection:
    """The ``[Unit]`` section of the generated unit."""

    description: str = ""
    after: tuple[str, ...] = ("network-online.target",)
    wants: tuple[str, ...] = ("network-online.target",)
    requires: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    start_limit_interval: int | None = None
    """``StartLimitIntervalSec=`` in seconds; None: not written (systemd's default)."""
    start_limit_burst: int | None = None
    """``StartLimitBurst=``; None: not written (systemd's default)."""
    extra: Extra = ()


@dataclass(frozen=True)
class ServiceSection:
    """The ``[Service]`` section of the generated unit."""

    restart: str = "on-failure"
    restart_sec: int = 10
    timeout_start: int = 900
    """Generous: the first start may pull a large image."""
    timeout_stop: int | None = None
    extra: Extra = ()


@dataclass(frozen=True)
class InstallSection:
    """The ``[Install]`` section; ``wanted_by`` None means the mode's default target."""

    wanted_by: tuple[str, ...] | None = None
    extra: Extra = ()

    def targets(self, user: bool) -> tuple[str, ...]:
        if self.wanted_by is not None:
            return self.wanted_by
        return ("default.target",) if user else ("multi-user.target",)


@dataclass(frozen=True)
class UpdateSpec:
    """What the watcher does for one container.

    Exactly one of ``schedule`` (daily local "HH:MM") and ``interval`` (seconds) is set.
    """

    policy: str = "auto"
    schedule: str | None = "03:00"
    randomized_delay: int = 3600
    interval: int | None = None
    min_age: int = 0
    health_cmd: tuple[str, ...] = ()
    health_timeout: int = 300
    keep_images: int = 1
    track: str = "digest"  # digest | patch | minor | major (psquadlet.watch.releases)
    tag_pattern: str = ""  # e.g. "v{version}-systemd": which tags are releases
    prerelease: bool = False  # also follow pre-releases (-alpha, -beta, -rc)


@dataclass(frozen=True)
class ContainerSpec:
    """One managed container: the unit ``NAME.container`` (or ``NAME.service``)."""

    name: str
    image: str
    """Normalised, fully qualified reference (see ``image_ref``)."""
    container_name: str = ""
    description: str = ""
    preset: str | None = None
    variant: str | None = None
    registry: str | None = None  # the preset's registry choice (None: presets.DEFAULT_REGISTRY)
    command: tuple[str, ...] = ()
    entrypoint: str = ""
    network: str = ""
    hostname: str = ""
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    add_hosts: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    mounts: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    environment: Pairs = ()
    environment_files: tuple[str, ...] = ()
    environment_host: bool = False
    secrets: tuple[str, ...] = ()
    """Podman secrets, ``NAME[,OPTIONS]`` (``Secret=`` / ``--secret``)."""
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    labels: Pairs = ()
    annotations: Pairs = ()
    user: str = ""
    group: str = ""
    group_add: tuple[str, ...] = ()
    working_dir: str = ""
    userns: str = ""
    ulimits: tuple[str, ...] = ()
    sysctls: Pairs = ()
    cgroupns: str = ""
    tty: bool = False
    init: bool = False
    read_only: bool = False
    no_new_privileges: bool = False
    privileged: bool = False
    timezone: str = ""
    log_driver: str = ""
    memory: str = ""
    """``podman run --memory`` limit, e.g. "512m"."""
    stop_signal: str = ""
    stop_timeout: int = 0
    pull: str = ""
    """Empty: not emitted (Quadlet's default, "missing"). Restarts must not pull by themselves."""
    notify: str = ""
    """Empty (off), "true", "healthy" or "healthy-when-supported" (resolved by ``render``)."""
    podman_args: tuple[str, ...] = ()
    global_args: tuple[str, ...] = ()
    health: HealthSpec | None = None
    unit: UnitSection = field(default_factory=UnitSection)
    service: ServiceSection = field(default_factory=ServiceSection)
    install: InstallSection = field(default_factory=InstallSection)
    update: UpdateSpec = field(default_factory=UpdateSpec)
    perfsonar: PerfsonarSpec | None = None
    """``[containers.X.perfsonar]`` (the extension in ``psquadlet.perfsonar``)."""

    @property
    def image_ref(self) -> imageref.ImageRef:
        return imageref.parse(self.image)

    @property
    def effective_container_name(self) -> str:
        return self.container_name or self.name

    @property
    def unit_name(self) -> str:
        """The systemd service running this container (NAME.container -> NAME.service)."""
        return f"{self.name}.service"

    @property
    def named_volumes(self) -> tuple[str, ...]:
        return tuple(v.source for v in self.volumes if v.is_named)


@dataclass(frozen=True)
class Config:
    """A whole configuration; ``source`` is the file it came from (or ``<built-in default>``)."""

    source: str
    watch: WatchSettings = field(default_factory=WatchSettings)
    registries: tuple[RegistrySettings, ...] = ()
    volumes: tuple[VolumeSpec, ...] = ()
    containers: tuple[ContainerSpec, ...] = ()
    notifications: NotificationSettings | None = None
    """``[notifications]`` (psquadlet.notifications.settings); None: the table is absent."""
    metrics: MetricsSettings | None = None
    """``[metrics]`` (psquadlet.metrics); None: no textfile is written."""

    def container(self, name: str) -> ContainerSpec:
        for spec in self.containers:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def volume(self, name: str) -> VolumeSpec:
        for spec in self.volumes:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def registry(self, host: str) -> RegistrySettings:
        """The settings for a registry host; defaults when it has no table."""
        for spec in self.registries:
            if spec.host == host:
                return spec
        return RegistrySettings(host=host)
