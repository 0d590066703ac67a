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

from psquadlet import model, presets, schema, watchunits
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
from psquadlet.containerconfig import (
    CONTAINER_EXTENSIONS,
    parse_container,
)
from psquadlet.errors import ConfigError, ConfigErrors, raise_collected
from psquadlet.metrics import MetricsSettings, parse_metrics
from psquadlet.notifications.settings import NotificationSettings, parse_notifications
from psquadlet.tomlpos import KeyPositions, tomllib
from psquadlet.tomltable import Context as _Context
from psquadlet.tomltable import Table as _Table
from psquadlet.tomltable import format_path
from psquadlet.tomltable import type_name as _type_name

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


# Tables
WATCH_KEYS = ("state_dir", "auth_file", "parallel", "enabled", "mode")
REGISTRY_KEYS = ("tls_verify",)
VOLUME_KEYS = ("driver", "options", "labels", "copy")
TOP_KEYS = ("watch", "registries", "volumes", "containers", "notifications", "metrics")


def _parse_watch(table: _Table | None) -> model.WatchSettings:
    if table is None:
        return model.WatchSettings()
    return model.WatchSettings(
        state_dir=table.text("state_dir", model.default_state_dir(), check_abs_path),
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
        containers.append(parse_container(ctx, name, value))

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
