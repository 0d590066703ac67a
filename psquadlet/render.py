"""Model -> unit file texts, in two formats from one description of each container.

Both formats are built from the same list of podman options (``_Option``): each carries the
Quadlet key that expresses it (or None when Quadlet has none and PodmanArgs= must carry it)
and the ``podman run`` arguments that express it. The Quadlet format writes the keys; the
service format (for Podman older than 4.4, which has no Quadlet) writes the arguments into an
``ExecStart=`` like ``podman generate systemd --new`` does. Keeping one list means the two
formats cannot drift apart in what they ask podman to do.

All quoting and escaping is done by ``psquadlet.unitfile``; a value it refuses becomes a
``ConfigError`` naming the configuration key it came from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from psquadlet import marker, ownhooks, quadlet_keys, schema, unitfile
from psquadlet.downgrade import for_target
from psquadlet.errors import ConfigError, PodmanVersionError, UsageError, raise_collected
from psquadlet.model import Config, ContainerSpec, VolumeSpec

FORMATS = ("quadlet", "service")
PODMAN = "/usr/bin/podman"
NEWEST = (99, 0, 0)


@dataclass(frozen=True)
class UnitFile:
    """One file to write into the output folder."""

    filename: str
    text: str


Version = tuple[int, int]
Needs = tuple[tuple[str, Version], ...]
"""(feature, first Podman version that has it), e.g. ("--sdnotify=healthy", (4, 7))."""


@dataclass(frozen=True)
class _Option:
    """One thing podman is asked to do, in both spellings."""

    path: str
    """Configuration key path it comes from (for error messages)."""
    key: str | None
    """Quadlet [Container] key, or None: then ``args`` go to PodmanArgs=."""
    value: str | tuple[str, ...]
    """The Quadlet key's value: one value, or the words of a list-valued key."""
    args: tuple[str, ...]
    """The same as ``podman run`` arguments."""
    quadlet_needs: Needs = ()
    """Versions this value needs beyond its key's own (a value that came later)."""
    flag_needs: Needs = ()
    """Versions ``args`` need from ``podman run`` (service format, and PodmanArgs=)."""
    fallback: Version | None = None
    """A Quadlet older than this writes ``args`` to PodmanArgs= instead of ``key``."""


def _key(name: str) -> str:
    """A map key inside a key path, quoted like config.format_path when it is not bare."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def _seconds(value: int) -> str:
    return f"{value}s"


def _row_option(
    row: schema.Setting, path: str, value: str | tuple[str, ...], arg: str, raw: str = ""
) -> _Option:
    """The option of one schema row; ``raw`` is the setting's value, for later values' gates."""
    quadlet_needs: list[tuple[str, Version]] = []
    flag_needs: list[tuple[str, Version]] = []
    if row.flag is not None and row.flag_since > (0, 0):
        flag_needs.append((row.flag, row.flag_since))
    if raw in row.values_since:
        quadlet_since, flag_since = row.values_since[raw]
        quadlet_needs.append((f"{row.quadlet}={raw}", quadlet_since))
        flag_needs.append((f"{row.flag}={raw}", flag_since))
    return _Option(
        path, row.quadlet, value, (arg,) if arg else (), tuple(quadlet_needs), tuple(flag_needs),
        row.quadlet_since if row.fallback else None,
    )  # fmt: skip


def _simple(row: schema.Setting, spec: ContainerSpec, base: str) -> list[_Option]:
    """A simple row: each value (list item, map pair) is one key and one ``FLAG=VALUE``."""
    value = getattr(spec, row.key)
    if not value:
        return []
    kind = quadlet_keys.key("Container", row.quadlet).kind if row.quadlet else None
    single = kind in (quadlet_keys.Kind.VERBATIM, quadlet_keys.Kind.BOOL)

    def option(path: str, text: str) -> _Option:
        quadlet: str | tuple[str, ...] = (text if single else (text,)) if kind else ()
        return _row_option(row, f"{base}.{path}", quadlet, f"{row.flag}={text}", raw=text)

    if row.type == schema.FLAG:
        return [_row_option(row, f"{base}.{row.key}", "true" if kind else (), row.flag or "")]
    if row.type == schema.LIST:
        return [option(f"{row.key}[{i}]", item) for i, item in enumerate(value)]
    if row.type == schema.MAP:
        return [option(f"{row.key}.{_key(k)}", f"{k}={v}") for k, v in value]
    return [option(row.key, str(value))]


def _volume_options(spec: ContainerSpec, base: str, nocopy: frozenset[str]) -> list[_Option]:
    opts: list[_Option] = []
    for i, mount in enumerate(spec.volumes):
        quadlet_source = f"{mount.source}.volume" if mount.is_named else mount.source
        options = f":{','.join(mount.options)}" if mount.options else ""
        run_volume = str(mount)
        if mount.is_named and mount.source in nocopy and "nocopy" not in mount.options:
            run_volume += ",nocopy" if mount.options else ":nocopy"
        opts.append(
            _Option(
                f"{base}.volumes[{i}]",
                "Volume",
                f"{quadlet_source}:{mount.target}{options}",
                (f"--volume={run_volume}",),
            )
        )
    return opts


def _health_options(spec: ContainerSpec, base: str) -> list[_Option]:
    health = spec.health
    if health is None:
        return []
    if isinstance(health.cmd, str):
        cmd = health.cmd
    else:
        cmd = "[" + ", ".join(_json_string(word) for word in health.cmd) + "]"
    values = {
        "cmd": cmd,
        "interval": _seconds(health.interval),
        "timeout": _seconds(health.timeout),
        "retries": str(health.retries),
        "start_period": _seconds(health.start_period),
        "on_failure": health.on_failure,
    }
    return [
        _row_option(row, f"{base}.health.{key}", values[key], f"{row.flag}={values[key]}")
        for key, row in schema.HEALTH.items()
        if values.get(key)  # restart_budget & co: psquadlet's supervisor, not Podman's
    ]


def _container_options(spec: ContainerSpec, nocopy: frozenset[str] = frozenset()) -> list[_Option]:
    """Every [Container] option, in schema order; the special rows are the branches below.

    ``nocopy``: named volumes whose ``copy = false`` must travel on the run line (service).
    """
    base = f"containers.{spec.name}"
    rows = schema.CONTAINER
    opts: list[_Option] = []
    for key, row in rows.items():
        if row.render == schema.SIMPLE:
            opts.extend(_simple(row, spec, base))
        elif key == "image":
            opts.append(_Option(f"{base}.image", "Image", spec.image, ()))
        elif key == "container_name":
            name = spec.effective_container_name
            opts.append(_row_option(row, f"{base}.container_name", name, f"--name={name}"))
        elif key == "volumes":
            opts.extend(_volume_options(spec, base, nocopy))
        elif key == "user" and spec.user:
            user = f"{spec.user}:{spec.group}" if spec.group else spec.user
            opts.append(_row_option(row, f"{base}.user", spec.user, f"--user={user}"))
            if spec.group:
                opts.append(_Option(f"{base}.group", "Group", spec.group, ()))
        elif key == "notify" and spec.notify:
            # The service format writes --sdnotify itself (see _service_unit): no args here.
            opts.append(_row_option(row, f"{base}.notify", spec.notify, "", raw=spec.notify))
        elif key == "health":
            opts.extend(_health_options(spec, base))
        elif key == "podman_args" and spec.podman_args:
            opts.append(_Option(f"{base}.podman_args", None, (), spec.podman_args))
        # command and global_args are not options: see _quadlet_container / _service_unit.
    return opts


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class _Writer:
    """Collects lines of one unit; turns unitfile refusals into located ConfigErrors."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = [marker.marker(source)]
        self.errors: list[ConfigError] = []
        self.used: list[tuple[quadlet_keys.QuadletKey, str]] = []
        self.needs: list[tuple[str, Version, str]] = []
        """Features beyond the keys in ``used``: (feature, version, configuration key path)."""

    def need(self, needs: Needs, path: str) -> None:
        self.needs.extend((feature, version, path) for feature, version in needs)

    def section(self, name: str) -> None:
        if len(self.lines) > 1:
            self.lines.append("")
        self.lines.append(f"[{name}]")

    def key(self, section: str, name: str, value: str | Sequence[str], path: str) -> None:
        row = quadlet_keys.key(section, name)
        self.used.append((row, path))
        try:
            text = unitfile.render_value(row, value)
        except unitfile.UnitValueError as exc:
            self.errors.append(ConfigError(self.source, None, path, exc.reason))
            return
        self.lines.append(f"{name}={text}")

    def raw(self, name: str, value: str, path: str) -> None:
        """``extra`` keys: raw systemd syntax, the operator's responsibility beyond safety."""
        try:
            unitfile.check_raw(value)
        except unitfile.UnitValueError as exc:
            self.errors.append(ConfigError(self.source, None, path, exc.reason))
            return
        self.lines.append(f"{name}={value}")

    def literal(self, line: str) -> None:
        """A line psquadlet composes itself from trusted parts."""
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _extra(writer: _Writer, extra: Sequence[tuple[str, Sequence[str]]], path: str) -> None:
    for name, values in extra:
        for value in values:
            writer.raw(name, value, f"{path}.{name}")


def _unit_section(
    writer: _Writer, spec: ContainerSpec, extra_after: Sequence[str] = (), own: Sequence[str] = ()
) -> None:
    base = f"containers.{spec.name}.unit"
    writer.section("Unit")
    description = spec.unit.description or spec.description or f"{spec.name} container"
    if spec.unit.description:
        desc_path = f"{base}.description"
    elif spec.description:
        desc_path = f"containers.{spec.name}.description"
    else:
        desc_path = f"containers.{spec.name}"
    writer.key("Unit", "Description", description, desc_path)
    for name, values in (
        ("Wants", spec.unit.wants),
        ("Requires", spec.unit.requires),
        ("After", (*spec.unit.after, *extra_after)),
        ("Before", spec.unit.before),
    ):
        if values:
            writer.key("Unit", name, tuple(values), f"{base}.{name.lower()}")
    for key, row in schema.UNIT.items():
        value = getattr(spec.unit, key)
        if value is not None and row.systemd is not None:
            section, name = row.systemd.split(".")
            writer.key(section, name, str(value), f"{base}.{key}")
    if own:
        writer.key("Unit", "Wants", tuple(own), "watch.enabled")
    _extra(writer, spec.unit.extra, f"{base}.extra")


def _service_common(writer: _Writer, spec: ContainerSpec, config: Config) -> None:
    base = f"containers.{spec.name}.service"
    service = spec.service
    writer.key("Service", "Restart", service.restart, f"{base}.restart")
    writer.key("Service", "RestartSec", str(service.restart_sec), f"{base}.restart_sec")
    writer.key("Service", "TimeoutStartSec", str(service.timeout_start), f"{base}.timeout_start")
    if service.timeout_stop is not None:
        writer.key("Service", "TimeoutStopSec", str(service.timeout_stop), f"{base}.timeout_stop")
    try:
        for line in ownhooks.health_hooks(config):
            writer.literal(line)
    except ConfigError as exc:
        writer.errors.append(exc)


def _install_section(writer: _Writer, spec: ContainerSpec, user: bool) -> None:
    base = f"containers.{spec.name}.install"
    targets = spec.install.targets(user)
    if not targets and not spec.install.extra:
        return
    writer.section("Install")
    if targets:
        writer.key("Install", "WantedBy", tuple(targets), f"{base}.wanted_by")
    _extra(writer, spec.install.extra, f"{base}.extra")


def _quadlet_container(
    spec: ContainerSpec, config: Config, user: bool, version: tuple[int, int, int]
) -> _Writer:
    writer = _Writer(config.source)
    _unit_section(writer, spec, own=ownhooks.own_wants(config, spec))
    writer.section("Container")
    podman_args: list[tuple[str, str]] = []
    for option in _container_options(spec):
        too_old = option.fallback is not None and version[:2] < option.fallback
        if option.key is None or too_old:
            podman_args.extend((option.path, arg) for arg in option.args)
            writer.need(option.flag_needs, option.path)
            continue
        writer.key("Container", option.key, option.value, option.path)
        writer.need(option.quadlet_needs, option.path)
    if spec.command:
        writer.key("Container", "Exec", spec.command, f"containers.{spec.name}.command")
    if spec.global_args:
        writer.key(
            "Container", "GlobalArgs", spec.global_args, f"containers.{spec.name}.global_args"
        )
    for path, arg in podman_args:
        writer.key("Container", "PodmanArgs", (arg,), path)
    writer.section("Service")
    _service_common(writer, spec, config)
    _extra(writer, spec.service.extra, f"containers.{spec.name}.service.extra")
    _install_section(writer, spec, user)
    return writer


def _quadlet_volume(volume: VolumeSpec, source: str) -> _Writer:
    base = f"volumes.{volume.name}"
    writer = _Writer(source)
    writer.section("Unit")
    writer.key("Unit", "Description", f"psquadlet volume {volume.name}", base)
    writer.section("Volume")
    writer.key("Volume", "VolumeName", volume.name, base)
    if volume.driver:
        writer.key("Volume", "Driver", volume.driver, f"{base}.driver")
    if not volume.copy:
        writer.key("Volume", "Copy", "false", f"{base}.copy")
    for label_key, label_value in volume.labels:
        writer.key("Volume", "Label", (f"{label_key}={label_value}",), f"{base}.labels")
    for option in volume.options:
        writer.key("Volume", "PodmanArgs", (f"--opt={option}",), f"{base}.options")
    return writer


# ---------------------------------------------------------------------------------------------
# --format service


def _exec_line(writer: _Writer, name: str, fixed: str, argv: Sequence[str], path: str) -> None:
    """``name=`` PODMAN ``fixed`` ARGV...: ``fixed`` may hold specifiers (%t, %N) on purpose."""
    row = quadlet_keys.key("Service", name)
    try:
        rendered = unitfile.render_value(row, [PODMAN, *argv])
    except unitfile.UnitValueError as exc:
        writer.errors.append(ConfigError(writer.source, None, path, exc.reason))
        return
    rest = rendered[len(PODMAN) :]
    writer.literal(f"{name}={PODMAN}{fixed}{rest}")


def _service_run_argv(writer: _Writer, spec: ContainerSpec, config: Config) -> list[str]:
    """Arguments after the fixed ``podman run ...`` part: options, image, command."""
    nocopy = frozenset(v.name for v in config.volumes if not v.copy)
    args: list[str] = []
    for option in _container_options(spec, nocopy):
        writer.need(option.flag_needs, option.path)
        args.extend(option.args)
    args.append(spec.image)
    args.extend(spec.command)
    return args


# The fixed part of the service format's podman command lines, and the Podman that has it
# (RELEASE_NOTES.md of containers/podman: `run --replace` 2.0.0; `run --cgroups=split` and
# `--sdnotify` 2.1.0; `rm`/`stop` `--cidfile` and `--ignore` 1.7.0; `rm --time` 4.0.0, which
# podman-rm(1) of v3.0.1 and v3.4.4 lacks). Below RM_TIME_SINCE `rm` runs without `-t`.
SERVICE_RUN_NEEDS: Needs = (("--replace", (2, 0)), ("--cgroups=split", (2, 1)),
                            ("--sdnotify", (2, 1)))  # fmt: skip
RM_TIME_SINCE: Version = (4, 0)


def _service_unit(
    spec: ContainerSpec, config: Config, user: bool, version: tuple[int, int, int] = NEWEST
) -> _Writer:
    writer = _Writer(config.source)
    base = f"containers.{spec.name}"
    writer.need(SERVICE_RUN_NEEDS, base)
    _unit_section(writer, spec, own=ownhooks.own_wants(config, spec))
    writer.literal("RequiresMountsFor=%t/containers")
    writer.section("Service")
    writer.literal("Environment=PODMAN_SYSTEMD_UNIT=%n")
    _service_common(writer, spec, config)
    writer.literal("Type=notify")
    writer.literal("NotifyAccess=all")
    writer.literal("KillMode=mixed")
    writer.literal("Delegate=yes")
    writer.literal("SyslogIdentifier=%N")
    # Podman 4.3 refuses to start when a cid file is left over from a crash (as
    # podman generate systemd --new does, remove it first).
    writer.literal("ExecStartPre=/bin/rm -f %t/%N.cid")
    volumes = {v.name: v for v in config.volumes}
    for name in dict.fromkeys(spec.named_volumes):
        volume = volumes.get(name)
        if volume is None or not (volume.driver or volume.options or volume.labels):
            continue  # podman run creates a plain named volume by itself
        argv = [*spec.global_args, "volume", "create"]
        if volume.driver:
            argv.append(f"--driver={volume.driver}")
        argv.extend(f"--opt={o}" for o in volume.options)
        argv.extend(f"--label={k}={v}" for k, v in volume.labels)
        argv.append(name)
        # "-": the volume exists from an earlier start; podman run then uses it.
        row = quadlet_keys.key("Service", "ExecStartPre")
        try:
            rendered = unitfile.render_value(row, [PODMAN, *argv])
        except unitfile.UnitValueError as exc:
            writer.errors.append(ConfigError(config.source, None, f"volumes.{name}", exc.reason))
            continue
        writer.literal(f"ExecStartPre=-{rendered}")
    run_args = _service_run_argv(writer, spec, config)
    sdnotify = {"": "conmon", "true": "container", "healthy": "healthy"}[spec.notify]
    fixed_global = ""
    if spec.global_args:
        try:
            fixed_global = (
                " "
                + unitfile.render_value(
                    quadlet_keys.key("Service", "ExecStart"), [PODMAN, *spec.global_args]
                )[len(PODMAN) + 1 :]
            )
        except unitfile.UnitValueError as exc:
            writer.errors.append(
                ConfigError(config.source, None, f"{base}.global_args", exc.reason)
            )
    fixed = (
        f"{fixed_global} run --cidfile=%t/%N.cid --replace --rm --cgroups=split "
        f"--sdnotify={sdnotify} -d"
    )
    _exec_line(writer, "ExecStart", fixed, run_args, base)
    stop = str(spec.stop_timeout or 10)
    writer.literal(f"ExecStop={PODMAN}{fixed_global} stop --ignore -t {stop} --cidfile=%t/%N.cid")
    rm_time = f" -t {stop}" if version[:2] >= RM_TIME_SINCE else ""
    writer.literal(
        f"ExecStopPost=-{PODMAN}{fixed_global} rm -f --ignore{rm_time} --cidfile=%t/%N.cid"
    )
    _extra(writer, spec.service.extra, f"{base}.service.extra")
    _install_section(writer, spec, user)
    return writer


# ---------------------------------------------------------------------------------------------
# Entry point


def _gate(writer: _Writer, version: tuple[int, int, int], keys: bool) -> list[ConfigError]:
    """What the target Podman lacks, each at the configuration key that asked for it.

    ``keys``: also the Quadlet keys written (not for the service format, whose [Service] keys
    are systemd's). Values and ``podman run`` flags are gated in both formats.
    """
    used = [
        (f"key {row.name}= in [{row.section}]", row.since, path)
        for row, path in writer.used
        if keys and row.since != (0, 0)
    ]
    return [
        PodmanVersionError(writer.source, None, path, feature=feature, needs=needs, target=version)
        for feature, needs, path in (*used, *writer.needs)
        if version[:2] < needs
    ]


def render_units(
    config: Config,
    fmt: str = "quadlet",
    podman_version: tuple[int, int, int] | None = None,
    user: bool = False,
) -> tuple[UnitFile, ...]:
    """Every file the configuration asks for, sorted by name.

    ``podman_version`` (default: the newest) gates Quadlet keys: a key the target does not know
    is refused, naming the key and the version that added it. Raises ConfigError(s) for values
    unitfile refuses, UsageError for an unknown format.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    version = podman_version or NEWEST
    if fmt == "quadlet" and version[:2] < quadlet_keys.QUADLET_MIN_VERSION:
        raise UsageError(quadlet_keys.check_version([], version)[0])
    files: list[UnitFile] = []
    errors: list[ConfigError] = []
    for configured in config.containers:
        spec = for_target(configured, fmt, version)
        if fmt == "quadlet":
            writer = _quadlet_container(spec, config, user, version)
            filename = f"{spec.name}.container"
        else:
            writer = _service_unit(spec, config, user, version)
            filename = f"{spec.name}.service"
        errors.extend(writer.errors)
        errors.extend(_gate(writer, version, keys=fmt == "quadlet"))
        files.append(UnitFile(filename, writer.text()))
    if fmt == "quadlet":
        for volume in config.volumes:
            writer = _quadlet_volume(volume, config.source)
            errors.extend(writer.errors)
            errors.extend(_gate(writer, version, keys=True))
            files.append(UnitFile(f"{volume.name}.volume", writer.text()))
    # One message per problem: a version message for a key used by many containers is
    # reported once per container, which names where to change it.
    unique: dict[str, ConfigError] = {}
    for error in errors:
        unique.setdefault(str(error), error)
    raise_collected(list(unique.values()))
    return tuple(sorted(files, key=lambda f: f.filename))
