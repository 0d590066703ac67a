"""TOML configuration -> validated ``model.Config``, with located errors.

Every problem is reported as a ``ConfigError`` naming the file, the line (where the scanner in
``tomlpos`` can place it) and the key path, and all problems of one file are reported together.
Nothing outside this module needs to validate again: if a ``Config`` exists, every value in it
is one that ``unitfile`` accepts and that means what the operator wrote.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from psquadlet import model, perfsonar, presets, schema, watchunits
from psquadlet.checks import (
    FieldError,
    check_abs_path,
    check_add_host,
    check_bound,
    check_capability,
    check_device,
    check_env_name,
    check_hostname,
    check_image,
    check_ip,
    check_label_key,
    check_mount,
    check_name,
    check_port,
    check_registry_host,
    check_schedule,
    check_signal,
    check_sysctl,
    check_tmpfs,
    check_ulimit,
    check_unit_name,
    check_volume,
    check_word,
    one_of,
    parse_duration,
    parse_volume,
)
from psquadlet.errors import ConfigError, ConfigErrors, did_you_mean, raise_collected
from psquadlet.extension import ContainerExtension
from psquadlet.metrics import MetricsSettings, parse_metrics
from psquadlet.notifications.settings import NotificationSettings, parse_notifications
from psquadlet.tomlpos import KeyPositions, tomllib
from psquadlet.tomltable import Context as _Context
from psquadlet.tomltable import Table as _Table
from psquadlet.tomltable import format_path
from psquadlet.tomltable import type_name as _type_name
from psquadlet.watch.releases import TRACKS, TemplateError, check_template

# The checks and the table reader are re-exported: extension table parsers and import use them.
__all__ = [
    "CONTAINER_EXTENSIONS",
    "DEFAULT_CONFIG_PATH",
    "FieldError",
    "_Context",
    "_Table",
    "_type_name",
    "check_abs_path",
    "check_add_host",
    "check_bound",
    "check_capability",
    "check_device",
    "check_env_name",
    "check_hostname",
    "check_image",
    "check_ip",
    "check_label_key",
    "check_mount",
    "check_name",
    "check_port",
    "check_registry_host",
    "check_schedule",
    "check_signal",
    "check_sysctl",
    "check_tmpfs",
    "check_ulimit",
    "check_unit_name",
    "check_volume",
    "check_word",
    "default_config",
    "format_path",
    "load_config",
    "locate",
    "one_of",
    "parse_config",
    "parse_duration",
    "parse_volume",
]

DEFAULT_CONFIG_PATH = Path("/etc/psquadlet/psquadlet.toml")
BUILTIN_SOURCE = model.BUILTIN_SOURCE

DEFAULT_CONFIG_TEXT = f"""\
[containers.perfsonar-testpoint]
preset = "{presets.PERFSONAR_TESTPOINT}"
"""


# Tables inside [containers.NAME] owned by extensions (psquadlet.extension): each parses its
# table through the error context below into the ContainerSpec field named like the table.
CONTAINER_EXTENSIONS: tuple[ContainerExtension[Any], ...] = (perfsonar.EXTENSION,)


# ---------------------------------------------------------------------------------------------
# Tables

WATCH_KEYS = ("state_dir", "auth_file", "parallel", "enabled", "mode")
REGISTRY_KEYS = ("tls_verify",)
VOLUME_KEYS = ("driver", "options", "labels", "copy")
HEALTH_KEYS = ("cmd", "interval", "timeout", "retries", "start_period", "on_failure")
UNIT_KEYS = ("description", "after", "wants", "requires", "before", *schema.UNIT, "extra")
SERVICE_KEYS = ("restart", "restart_sec", "timeout_start", "timeout_stop", "extra")
INSTALL_KEYS = ("wanted_by", "extra")
UPDATE_KEYS = (
    "policy", "schedule", "randomized_delay", "interval", "min_age", "health_cmd",
    "health_timeout", "keep_images", "track", "tag_pattern", "prerelease",
)  # fmt: skip
SUBTABLES = ("health", "unit", "service", "install", "update")
CONTAINER_KEYS = schema.CONTAINER_KEYS
TOP_KEYS = ("watch", "registries", "volumes", "containers", "notifications", "metrics")


def _parse_watch(table: _Table | None) -> model.WatchSettings:
    if table is None:
        return model.WatchSettings()
    return model.WatchSettings(
        state_dir=table.text("state_dir", model.DEFAULT_STATE_DIR, check_abs_path),
        auth_file=table.text("auth_file", "", check_abs_path),
        parallel=table.integer("parallel", 4, minimum=1, maximum=schema.bound("watch.parallel")),
        enabled=table.flag("enabled", True),
        mode=table.text("mode", "daemon", one_of(*watchunits.MODES)),
    )


def _parse_volume(table: _Table, name: str) -> model.VolumeSpec:
    return model.VolumeSpec(
        name=name,
        driver=table.text("driver", "", check_word),
        options=table.strlist("options", (), check_word),
        labels=table.strmap("labels", (), check_label_key),
        copy=table.flag("copy", True),
    )


def _merge_preset(ctx: _Context, raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The operator's table laid over the preset's (see presets' docstring for the rules)."""
    path: tuple[str | int, ...] = ("containers", name)
    merged = dict(raw)
    preset = raw.get("preset")
    variant = raw.get("variant")
    registry = raw.get("registry")
    if preset is None:
        for key in ("variant", "registry"):
            if raw.get(key) is not None:
                ctx.error((*path, key), f"'{key}' needs 'preset'")
        return merged
    if registry is not None and not _preset_registry_ok(ctx, (*path, "registry"), registry):
        return merged
    if not isinstance(preset, str):
        ctx.error((*path, "preset"), f"expected a string, got {_type_name(preset)}")
        return merged
    if variant is not None and not isinstance(variant, str):
        ctx.error((*path, "variant"), f"expected a string, got {_type_name(variant)}")
        return merged
    if preset not in presets.preset_names():
        ctx.error(
            (*path, "preset"),
            f"unknown preset {preset!r}",
            did_you_mean(preset, presets.preset_names()),
        )
        return merged
    if variant is not None and variant not in presets.variants(preset):
        ctx.error(
            (*path, "variant"),
            f"unknown variant {variant!r} of preset {preset!r}: expected one of "
            f"{', '.join(presets.variants(preset))}",
            did_you_mean(variant, presets.variants(preset)),
        )
        return merged
    base = presets.preset_values(preset, variant, name, registry)
    for key, value in base.items():
        if key in SUBTABLES and isinstance(merged.get(key), dict):
            merged[key] = {**value, **merged[key]}
        elif key not in merged:
            merged[key] = value
    return merged


def _preset_registry_ok(ctx: _Context, path: tuple[str | int, ...], registry: object) -> bool:
    """A registry host (``ghcr.io``, ``docker.io``, ``mirror.example:5000``, ``host/prefix``)."""
    if not isinstance(registry, str):
        ctx.error(path, f"expected a string, got {_type_name(registry)}")
        return False
    try:
        ref = check_image(presets.testpoint_image(registry, "latest"))
    except FieldError as e:
        ctx.error(path, f"not a registry host: {e.message}", 'e.g. "ghcr.io" or "docker.io"')
        return False
    if not ref.startswith(registry + "/"):
        ctx.error(path, f"{registry!r} is not a registry host", 'e.g. "ghcr.io" or "docker.io"')
        return False
    return True


def _parse_health(table: _Table | None) -> model.HealthSpec | None:
    if table is None:
        return None
    cmd_value = table.data.get("cmd")
    cmd: str | tuple[str, ...]
    if isinstance(cmd_value, list):
        cmd = table.strlist("cmd")
        if not cmd:
            table.ctx.error((*table.path, "cmd"), "the exec form needs at least one word")
    elif cmd_value is None:
        cmd = ""
        table.ctx.error(table.path, "missing key 'cmd': a health check needs a command")
    else:
        cmd = table.text("cmd")
        if not cmd.strip():
            table.ctx.error((*table.path, "cmd"), "a health check needs a command")
    d = model.field_defaults(model.HealthSpec)
    rows = schema.HEALTH
    return model.HealthSpec(
        cmd=cmd,
        interval=table.duration("interval", d["interval"], rows["interval"].bound),
        timeout=table.duration("timeout", d["timeout"], rows["timeout"].bound),
        retries=table.integer("retries", d["retries"], maximum=rows["retries"].bound or 0),
        start_period=table.duration("start_period", d["start_period"], rows["start_period"].bound),
        on_failure=table.text("on_failure", d["on_failure"], rows["on_failure"].check),
    )


_OWNED_UNIT_KEYS = {
    "Description": "unit.description",
    "After": "unit.after",
    "Wants": "unit.wants",
    "Requires": "unit.requires",
    "Before": "unit.before",
}
_OWNED_SERVICE_KEYS = {
    "Restart": "service.restart",
    "RestartSec": "service.restart_sec",
    "TimeoutStartSec": "service.timeout_start",
    "TimeoutStopSec": "service.timeout_stop",
    "ExecStart": "command / podman_args",
    "ExecStop": "stop_signal / stop_timeout",
    "ExecStopPost": "stop_signal / stop_timeout",
    "Type": "notify",
    "NotifyAccess": "notify",
    "KillMode": "stop_signal / stop_timeout",
    "Delegate": "podman_args",
}


def _parse_unit(table: _Table | None) -> model.UnitSection:
    if table is None:
        return model.UnitSection()
    default = model.UnitSection()
    rows = schema.UNIT
    return model.UnitSection(
        description=table.text("description"),
        after=table.strlist("after", default.after, check_unit_name),
        wants=table.strlist("wants", default.wants, check_unit_name),
        requires=table.strlist("requires", (), check_unit_name),
        before=table.strlist("before", (), check_unit_name),
        start_limit_interval=table.opt_duration(
            "start_limit_interval", allow_empty=False, maximum=rows["start_limit_interval"].bound
        ),
        start_limit_burst=table.integer(
            "start_limit_burst", maximum=rows["start_limit_burst"].bound or 0
        )
        if table.has("start_limit_burst")
        else None,
        extra=table.raw_keys("extra", _OWNED_UNIT_KEYS),
    )


_RESTART = ("no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always")


def _parse_service(table: _Table | None) -> model.ServiceSection:
    if table is None:
        return model.ServiceSection()
    d = model.field_defaults(model.ServiceSection)
    return model.ServiceSection(
        restart=table.text("restart", d["restart"], one_of(*_RESTART)),
        restart_sec=table.duration("restart_sec", d["restart_sec"]),
        timeout_start=table.duration("timeout_start", d["timeout_start"]),
        timeout_stop=table.opt_duration("timeout_stop"),
        extra=table.raw_keys("extra", _OWNED_SERVICE_KEYS),
    )


def _parse_install(table: _Table | None) -> model.InstallSection:
    if table is None:
        return model.InstallSection()
    wanted_by = table.strlist("wanted_by", (), check_unit_name) if table.has("wanted_by") else None
    return model.InstallSection(
        wanted_by=wanted_by, extra=table.raw_keys("extra", {"WantedBy": "install.wanted_by"})
    )


def check_tag_pattern(value: str) -> str:
    if not value:
        return value
    try:
        return check_template(value)
    except TemplateError as e:
        raise FieldError(str(e), 'e.g. "v{version}-systemd"') from e


def _parse_update(table: _Table | None) -> model.UpdateSpec:
    if table is None:
        return model.UpdateSpec()
    d = model.field_defaults(model.UpdateSpec)
    interval = table.opt_duration("interval")
    schedule: str | None = table.text("schedule", d["schedule"], check_schedule)
    if interval is not None:
        if table.has("schedule"):
            table.ctx.error(
                (*table.path, "interval"), "set either 'schedule' or 'interval', not both"
            )
        if interval <= 0:
            table.ctx.error((*table.path, "interval"), "must be longer than 0s")
        schedule = None
    return model.UpdateSpec(
        policy=table.text("policy", d["policy"], one_of("auto", "notify", "off")),
        schedule=schedule,
        randomized_delay=table.duration("randomized_delay", d["randomized_delay"]),
        interval=interval,
        min_age=table.duration("min_age", d["min_age"]),
        health_cmd=table.strlist("health_cmd"),
        health_timeout=table.duration("health_timeout", d["health_timeout"]),
        keep_images=table.integer(
            "keep_images", d["keep_images"], maximum=schema.bound("update.keep_images")
        ),
        track=table.text("track", d["track"], one_of(*TRACKS)),
        tag_pattern=table.text("tag_pattern", d["tag_pattern"], check_tag_pattern),
        prerelease=table.flag("prerelease", d["prerelease"]),
    )


def _parse_notify(table: _Table) -> str:
    value = table.data.get("notify")
    if value is None or value is False:
        return ""
    if value is True:
        return "true"
    if value in (schema.NOTIFY_HEALTHY, schema.NOTIFY_HEALTHY_WHEN_SUPPORTED):
        return str(value)
    table.ctx.error(
        (*table.path, "notify"),
        f'expected true, false, "healthy" or "healthy-when-supported", got {value!r}',
    )
    return ""


# Container keys read by hand in _parse_container; every other row is read by _setting.
_PARSED_BY_HAND = ("preset", "variant", "registry", "image", "volumes", "notify", "health")
_CONTAINER_DEFAULTS = model.field_defaults(model.ContainerSpec)


def _setting(t: _Table, row: schema.Setting) -> object:
    """One simple key, by its schema row; the model's default where it is unset or invalid."""
    default = _CONTAINER_DEFAULTS[row.key]
    if row.type == schema.TEXT:
        return t.text(row.key, default, row.check)
    if row.type == schema.FLAG:
        return t.flag(row.key, default)
    if row.type == schema.INTEGER:
        return t.integer(row.key, default, maximum=row.bound or 10**6)
    if row.type == schema.DURATION:
        return t.duration(row.key, default, row.bound)
    if row.type == schema.LIST:
        return t.strlist(row.key, default, row.check)
    assert row.type == schema.MAP, row
    return t.strmap(row.key, default, row.key_check, row.check)


def _parse_container(ctx: _Context, name: str, raw: Mapping[str, Any]) -> model.ContainerSpec:
    merged = _merge_preset(ctx, raw, name)
    extensions = {ext.key: ext for ext in CONTAINER_EXTENSIONS}
    t = _Table(ctx, merged, ("containers", name), (*CONTAINER_KEYS, *SUBTABLES, *extensions))
    path = t.path

    if "image" not in merged and "preset" not in merged:
        ctx.error(path, "missing key 'image'", 'or set preset = "perfsonar-testpoint"')
    image = t.text("image", "docker.io/library/invalid:latest", check_image, required=True)

    # Extension values; their mounts are added per run by generate (they depend on --user/-o).
    extension_values: dict[str, Any] = {
        key: ext.parse(merged[key], ctx, (*path, key))
        for key, ext in extensions.items()
        if key in merged
    }
    volumes = [parse_volume(v) for v in t.strlist("volumes", (), schema.CONTAINER["volumes"].check)]

    settings = {
        key: _setting(t, row)
        for key, row in schema.CONTAINER.items()
        if key not in _PARSED_BY_HAND and t.has(key)
    }
    spec = model.ContainerSpec(
        name=name,
        image=image,
        preset=merged.get("preset") if isinstance(merged.get("preset"), str) else None,
        variant=merged.get("variant") if isinstance(merged.get("variant"), str) else None,
        registry=merged.get("registry") if isinstance(merged.get("registry"), str) else None,
        volumes=tuple(volumes),
        notify=_parse_notify(t),
        health=_parse_health(t.table("health", HEALTH_KEYS)),
        unit=_parse_unit(t.table("unit", UNIT_KEYS)),
        service=_parse_service(t.table("service", SERVICE_KEYS)),
        install=_parse_install(t.table("install", INSTALL_KEYS)),
        update=_parse_update(t.table("update", UPDATE_KEYS)),
        **extension_values,
        **settings,  # type: ignore[arg-type]
    )
    shared_network = spec.network in ("host", "none") or spec.network.startswith("container:")
    if spec.ports and shared_network:
        ctx.error(
            (*path, "ports"),
            f"ports cannot be published with network = {spec.network!r}",
            "the container uses the host's (or no) network: remove 'ports'",
        )
    if spec.group and not spec.user:
        ctx.error((*path, "group"), "'group' needs 'user' (podman run --user USER:GROUP)")
    if spec.update.track != "digest" and not spec.update.tag_pattern:
        ctx.error(
            (*path, "update", "track"),
            f"track = {spec.update.track!r} needs update.tag_pattern (which tags are releases)",
            'e.g. tag_pattern = "v{version}-systemd"',
        )
    if spec.update.policy != "off" and spec.image_ref.digest and not spec.image_ref.tag:
        ctx.error(
            (*path, "image"),
            "an image pinned by digest alone cannot be upgraded",
            'add a tag, or set update.policy = "off"',
        )
    return spec


# ---------------------------------------------------------------------------------------------
# Entry points


def _syntax_error(source: str, exc: Exception) -> ConfigError:
    message = str(exc)
    line: int | None = getattr(exc, "lineno", None)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        line = int(match.group(1))
        column = match.group(2)
        message = message[: match.start()].rstrip() + f" (column {column})"
    elif "end of document" in message:
        message = message.strip()
    return ConfigError(source, line, "", f"TOML syntax error: {message}")


def _named_tables(
    ctx: _Context, top: _Table, section: str, check: Callable[[str], object]
) -> Iterator[tuple[str, tuple[str | int, ...], dict[str, Any]]]:
    """Yield each well-formed ``[section.NAME]`` table; report the others and go on.

    Registries, volumes and containers are all keyed by a name the operator chose, so a bad
    name or a non-table value is one located error, and the rest of the file is still read.
    """
    tables = top.table(section, None)
    if tables is None:
        return
    for name, value in tables.data.items():
        path: tuple[str | int, ...] = (section, name)
        try:
            check(name)
        except FieldError as exc:
            ctx.error(path, exc.message, exc.hint)
            continue
        if not isinstance(value, dict):
            ctx.error(path, f"expected a table, got {_type_name(value)}")
            continue
        yield name, path, value


MAX_CONFIG_BYTES = 1 << 20
"""A configuration is a few KiB; anything near this is not one (and would cost time/memory)."""
MAX_KEY_PARTS = 32
"""tomllib's dotted keys cost time and memory quadratic in their parts: bound them first."""
_STRING_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'')
_LONG_KEY_RE = re.compile(rf"(?:(?:[A-Za-z0-9_-]+|\"\"|'')[ \t]*\.[ \t]*){{{MAX_KEY_PARTS}}}")


def _check_shape(text: str, source: str) -> None:
    """Refuse, before TOML parsing, what would make the parser itself slow or huge."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(source, None, "", f"larger than {MAX_CONFIG_BYTES} bytes")
    for number, line in enumerate(text.split("\n"), start=1):
        if line.count(".") >= MAX_KEY_PARTS and _LONG_KEY_RE.search(_STRING_RE.sub('""', line)):
            raise ConfigError(source, number, "", f"a key of more than {MAX_KEY_PARTS} parts")


OWN_UNITS = ("psquadlet-watch", "psquadlet-upgrade")
"""Names of psquadlet's own units (units/*.service, *.timer): not for containers."""


def _check_unit_collisions(
    ctx: _Context,
    containers: Sequence[model.ContainerSpec],
    volumes: Mapping[str, model.VolumeSpec],
    explicit: set[str],
) -> None:
    """Two files that become one systemd unit. Quadlet runs volume V as ``V-volume.service``:
    a container named so would share it; psquadlet's own units are not container names."""
    names = {spec.name for spec in containers}
    for name in sorted(names & set(OWN_UNITS)):
        ctx.error(
            ("containers", name),
            f"{name}.service is psquadlet's own unit (the upgrade watcher)",
            "choose another name",
        )
    for volume in sorted(volumes):
        clash = f"{volume}-volume"
        if clash not in names:
            continue
        if volume in explicit:
            where: tuple[str | int, ...] = ("volumes", volume)
        else:
            user = next(c.name for c in containers if volume in c.named_volumes)
            where = ("containers", user, "volumes")
        ctx.error(
            where,
            f"volume {volume!r} runs as {clash}.service, the unit of containers.{clash}",
            "rename the volume or the container",
        )


def parse_config(text: str, source: str) -> model.Config:
    """Parse and validate a whole configuration; raise ConfigError(s) naming every problem."""
    _check_shape(text, source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(source, exc) from None
    except RecursionError:
        raise ConfigError(source, None, "", "TOML nested too deeply") from None
    ctx = _Context(source, KeyPositions(text))
    top = _Table(ctx, data, (), TOP_KEYS)

    watch = _parse_watch(top.table("watch", WATCH_KEYS))

    registries: list[model.RegistrySettings] = []
    for host, path, value in _named_tables(ctx, top, "registries", check_registry_host):
        table = _Table(ctx, value, path, REGISTRY_KEYS)
        registries.append(model.RegistrySettings(host, table.flag("tls_verify", True)))

    declared: dict[str, model.VolumeSpec] = {}
    for name, path, value in _named_tables(ctx, top, "volumes", check_name):
        declared[name] = _parse_volume(_Table(ctx, value, path, VOLUME_KEYS), name)

    declared_here = tuple(declared)
    containers: list[model.ContainerSpec] = []
    for name, _path, value in _named_tables(ctx, top, "containers", check_name):
        containers.append(_parse_container(ctx, name, value))

    seen: dict[str, str] = {}
    for spec in containers:
        other = seen.get(spec.effective_container_name)
        if other is not None:
            ctx.error(
                ("containers", spec.name, "container_name"),
                f"container name {spec.effective_container_name!r} is also used by "
                f"containers.{other}",
            )
        seen[spec.effective_container_name] = spec.name
        for volume in spec.named_volumes:
            declared.setdefault(volume, model.VolumeSpec(name=volume))

    _check_unit_collisions(ctx, containers, declared, explicit=set(declared_here))
    notifications = _reporting(ctx, data, "notifications", parse_notifications)
    metrics = _reporting(ctx, data, "metrics", parse_metrics)
    raise_collected(sorted(ctx.errors, key=lambda e: e.line or 0))
    return model.Config(
        source=source,
        watch=watch,
        registries=tuple(sorted(registries, key=lambda r: r.host)),
        volumes=tuple(declared[name] for name in sorted(declared)),
        containers=tuple(sorted(containers, key=lambda c: c.name)),
        notifications=notifications,
        metrics=metrics,
    )


R = TypeVar("R", NotificationSettings, MetricsSettings)


def _reporting(
    ctx: _Context, data: Mapping[str, Any], key: str, parse: Callable[..., R]
) -> R | None:
    """``[notifications]`` / ``[metrics]``: parsed by their own modules, errors located here."""
    if key not in data:
        return None
    try:
        return parse(data[key], ctx.source, base=(key,), locate=ctx.positions.line)
    except (ConfigError, ConfigErrors) as exc:
        ctx.errors.extend(exc.errors)
        return None


def default_config() -> model.Config:
    """The built-in default: the recommended (systemd) perfSONAR testpoint."""
    return parse_config(DEFAULT_CONFIG_TEXT, BUILTIN_SOURCE)


def _read_regular(path: Path, source: str) -> bytes:
    """At most MAX_CONFIG_BYTES of a regular file: a FIFO, a device or /dev/zero is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise ConfigError(source, None, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(source, None, "", "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(source, None, "", f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(source, None, "", f"larger than {MAX_CONFIG_BYTES} bytes")
    return raw


def load_config(path: Path | None) -> model.Config:
    """Load ``path``; None means the default file if it exists, else the built-in default."""
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return default_config()
        path = DEFAULT_CONFIG_PATH
    source = str(path)
    if source == "-":
        return parse_config(sys.stdin.read(MAX_CONFIG_BYTES + 1), "<stdin>")
    raw = _read_regular(path, source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, None, "", f"not UTF-8 text: {exc.reason}") from None
    return parse_config(text, source)


def _split_path(key_path: str) -> list[str]:
    """Inverse of format_path, without the list indices."""
    return [
        match.group(1) if match.group(1) is not None else match.group(2)
        for match in re.finditer(r'"([^"]*)"|([A-Za-z0-9_-]+)(?![^\[]*\])', key_path)
    ]


def locate(errors: Sequence[ConfigError]) -> list[ConfigError]:
    """Add line numbers to errors found after parsing (the renderer's), from their files."""
    positions: dict[str, KeyPositions | None] = {}
    located: list[ConfigError] = []
    for error in errors:
        if error.line is not None or not error.key_path:
            located.append(error)
            continue
        if error.file not in positions:
            try:
                text = Path(error.file).read_text(encoding="utf-8")
                positions[error.file] = KeyPositions(text)
            except (OSError, UnicodeDecodeError):
                positions[error.file] = None
        finder = positions[error.file]
        line = finder.line(_split_path(error.key_path)) if finder is not None else None
        located.append(ConfigError(error.file, line, error.key_path, error.message, error.hint))
    return located
