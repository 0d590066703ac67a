"""TOML configuration -> validated ``model.Config``, with located errors.

Every problem is reported as a ``ConfigError`` naming the file, the line (where the scanner in
``tomlpos`` can place it) and the key path, and all problems of one file are reported together.
Nothing outside this module needs to validate again: if a ``Config`` exists, every value in it
is one that ``unitfile`` accepts and that means what the operator wrote.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from psquadlet import imageref, model, perfsonar, presets, unitfile
from psquadlet.errors import ConfigError, did_you_mean, raise_collected
from psquadlet.extension import ContainerExtension
from psquadlet.tomlpos import KeyPositions, tomllib

DEFAULT_CONFIG_PATH = Path("/etc/psquadlet/psquadlet.toml")
BUILTIN_SOURCE = model.BUILTIN_SOURCE

DEFAULT_CONFIG_TEXT = f"""\
[containers.perfsonar-testpoint]
preset = "{presets.PERFSONAR_TESTPOINT}"
"""

T = TypeVar("T")


class FieldError(Exception):
    """Raised by value checks (and by extension table parsers) for one bad value.

    ``key`` is a dotted path relative to the table being checked ("" for the value itself).
    """

    def __init__(self, message: str, hint: str | None = None, key: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.key = key


# Tables inside [containers.NAME] owned by extensions (psquadlet.extension): each parses its
# table through the error context below into the ContainerSpec field named like the table.
CONTAINER_EXTENSIONS: tuple[ContainerExtension[Any], ...] = (perfsonar.EXTENSION,)


# ---------------------------------------------------------------------------------------------
# Key paths and error collection


def format_path(parts: Sequence[str | int]) -> str:
    """``containers."a.b".ports[2]``: the spelling an operator would search the file for."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        piece = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
        text += f".{piece}" if text else piece
    return text


class _Context:
    def __init__(self, source: str, positions: KeyPositions) -> None:
        self.source = source
        self.positions = positions
        self.errors: list[ConfigError] = []

    def error(self, path: Sequence[str | int], message: str, hint: str | None = None) -> None:
        keys = [p for p in path if isinstance(p, str)]
        self.errors.append(
            ConfigError(self.source, self.positions.line(keys), format_path(path), message, hint)
        )


_TYPE_NAMES = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    list: "an array",
    dict: "a table",
}


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _check_text(value: str) -> None:
    try:
        unitfile.check_text(value)
    except unitfile.UnitValueError as exc:
        raise FieldError(exc.reason) from None


class _Table:
    """One TOML table being read: typed getters that record errors and return defaults."""

    def __init__(
        self,
        ctx: _Context,
        data: Mapping[str, Any],
        path: tuple[str | int, ...],
        allowed: Iterable[str] | None,
    ) -> None:
        """``allowed`` None: the keys are names (hosts, volumes, containers), not settings."""
        self.ctx = ctx
        self.data = data
        self.path = path
        allowed_set = set(allowed) if allowed is not None else set(data)
        for key in data:
            if key not in allowed_set:
                ctx.error(
                    (*path, key),
                    f"unknown key {key!r}",
                    did_you_mean(key, allowed_set),
                )

    def _get(self, key: str, kind: type, expected: str) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
        if not ok:
            self.ctx.error((*self.path, key), f"expected {expected}, got {_type_name(value)}")
            return None
        return value

    def _checked(
        self, path: tuple[str | int, ...], value: str, check: Callable[[str], str] | None
    ) -> str | None:
        try:
            _check_text(value)
            return check(value) if check is not None else value
        except FieldError as exc:
            self.ctx.error(path, exc.message, exc.hint)
            return None

    def has(self, key: str) -> bool:
        return key in self.data

    def text(
        self,
        key: str,
        default: str = "",
        check: Callable[[str], str] | None = None,
        required: bool = False,
    ) -> str:
        """An empty string means "not set" (the default) unless the key is required."""
        value = self._get(key, str, "a string")
        if value is None:
            return default
        if value == "" and not required:
            return default
        result = self._checked((*self.path, key), value, check)
        return default if result is None else result

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._get(key, bool, "true or false")
        return default if value is None else bool(value)

    def integer(
        self, key: str, default: int = 0, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self._get(key, int, "an integer")
        if value is None:
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.ctx.error((*self.path, key), f"must be {bound}, got {value}")
            return default
        return int(value)

    def duration(self, key: str, default: int) -> int:
        result = self.opt_duration(key, allow_empty=False)
        return default if result is None else result

    def opt_duration(self, key: str, allow_empty: bool = True) -> int | None:
        """Seconds, or None when unset (or "" where allowed)."""
        value = self.data.get(key)
        if value is None:
            return None
        path = (*self.path, key)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self.ctx.error(path, f'expected a duration like "90s", got {_type_name(value)}')
            return None
        if isinstance(value, int):
            if value < 0:
                self.ctx.error(path, f"must be >= 0, got {value}")
                return None
            return value
        if value == "" and allow_empty:
            return None
        try:
            return parse_duration(value)
        except FieldError as exc:
            self.ctx.error(path, exc.message, exc.hint)
            return None

    def strlist(
        self,
        key: str,
        default: tuple[str, ...] = (),
        check: Callable[[str], str] | None = None,
    ) -> tuple[str, ...]:
        value = self._get(key, list, "an array of strings")
        if value is None:
            return default
        result: list[str] = []
        for index, item in enumerate(value):
            path = (*self.path, key, index)
            if not isinstance(item, str):
                self.ctx.error(path, f"expected a string, got {_type_name(item)}")
                continue
            checked = self._checked(path, item, check)
            if checked is not None:
                result.append(checked)
        return tuple(result)

    def strmap(
        self,
        key: str,
        default: model.Pairs = (),
        key_check: Callable[[str], str] | None = None,
        value_check: Callable[[str], str] | None = None,
    ) -> model.Pairs:
        value = self._get(key, dict, "a table of strings")
        if value is None:
            return default
        result: dict[str, str] = {}
        for name, item in value.items():
            path = (*self.path, key, name)
            if not isinstance(item, str):
                self.ctx.error(path, f"expected a string, got {_type_name(item)}")
                continue
            checked_key = self._checked(path, name, key_check)
            checked = self._checked(path, item, value_check)
            if checked_key is not None and checked is not None:
                result[checked_key] = checked
        return model.pairs(result)

    def raw_keys(self, key: str, owned: Mapping[str, str] | None = None) -> model.Extra:
        """``owned``: unit keys psquadlet writes itself -> the setting that controls each."""
        value = self._get(key, dict, "a table of unit-file keys")
        if value is None:
            return ()
        result: dict[str, tuple[str, ...]] = {}
        for name, item in value.items():
            path = (*self.path, key, name)
            if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
                self.ctx.error(path, f"{name!r} is not a unit-file key name (like 'Conflicts')")
                continue
            if owned and name in owned:
                self.ctx.error(
                    path, f"{name}= is written by psquadlet", f"set {owned[name]} instead"
                )
                continue
            items = item if isinstance(item, list) else [item]
            values: list[str] = []
            for entry in items:
                if not isinstance(entry, str):
                    self.ctx.error(
                        path, f"expected a string or array of strings, got {_type_name(entry)}"
                    )
                    continue
                checked = self._checked(path, entry, None)
                if checked is not None:
                    values.append(checked)
            result[name] = tuple(values)
        return tuple(sorted(result.items()))

    def table(self, key: str, allowed: Iterable[str] | None) -> _Table | None:
        value = self._get(key, dict, "a table")
        if value is None:
            return None
        return _Table(self.ctx, value, (*self.path, key), allowed)


# ---------------------------------------------------------------------------------------------
# Value checks: each returns the (possibly normalised) value or raises FieldError.

_DURATION_RE = re.compile(r"(\d+)\s*(d|h|m|s)")
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """``"1h30m"`` -> 5400. Bare digits are seconds."""
    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped)
    pos, total = 0, 0
    compact = stripped.replace(" ", "")
    while pos < len(compact):
        match = _DURATION_RE.match(compact, pos)
        if not match:
            raise FieldError(
                f"invalid duration {text!r}",
                'use a number with a unit: "90s", "30m", "1h30m", "2d"',
            )
        total += int(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not compact:
        raise FieldError("empty duration", 'use a number with a unit: "90s"')
    return total


_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_name(value: str) -> str:
    if not _NAME_RE.fullmatch(value) or len(value) > 200:
        raise FieldError(
            f"invalid name {value!r}",
            "use letters, digits, '_', '.', '-', starting with a letter or digit",
        )
    if value.endswith((".service", ".container", ".volume")):
        raise FieldError(f"invalid name {value!r}: leave out the unit suffix")
    return value


def check_unit_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9:_.\\@-]+\.[a-z]+", value):
        raise FieldError(f"invalid unit name {value!r}", "e.g. 'network-online.target'")
    return value


def check_image(value: str) -> str:
    try:
        return str(imageref.parse(value))
    except imageref.ImageRefError as exc:
        hint = f"use {exc.suggestion!r}" if exc.suggestion else None
        raise FieldError(exc.reason, hint) from None


def check_word(value: str) -> str:
    """A value that must be one word (no whitespace), e.g. a network or a user name."""
    if not value or any(c.isspace() for c in value):
        raise FieldError(f"invalid value {value!r}: must be one word without spaces")
    return value


def check_abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise FieldError(f"{value!r} is not an absolute path")
    return value


_PORT = r"\d{1,5}(?:-\d{1,5})?"
_PORT_RE = re.compile(
    rf"(?:(?P<ip>\[[0-9A-Fa-f:.]+\]|[0-9.]+):(?P<hp1>{_PORT})?:|(?P<hp2>{_PORT}):)?"
    rf"(?P<cp>{_PORT})(?:/(?P<proto>tcp|udp|sctp))?"
)


def check_port(value: str) -> str:
    match = _PORT_RE.fullmatch(value)
    if not match:
        raise FieldError(
            f"invalid port mapping {value!r}",
            "use [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp], e.g. '8080:80/tcp'",
        )
    for group in ("hp1", "hp2", "cp"):
        text = match.group(group)
        if text is None:
            continue
        numbers = [int(n) for n in text.split("-")]
        if any(not 1 <= n <= 65535 for n in numbers):
            raise FieldError(f"invalid port mapping {value!r}: ports are 1-65535")
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            raise FieldError(f"invalid port mapping {value!r}: range runs backwards")
    ip_text = match.group("ip")
    if ip_text:
        try:
            ipaddress.ip_address(ip_text.strip("[]"))
        except ValueError:
            raise FieldError(f"invalid port mapping {value!r}: bad IP {ip_text!r}") from None
    return value


_VOLUME_OPTIONS = {
    "ro", "rw", "z", "Z", "U", "O", "shared", "rshared", "slave", "rslave", "private",
    "rprivate", "unbindable", "runbindable", "nocopy", "copy", "noexec", "exec", "nodev",
    "dev", "nosuid", "suid", "bind", "rbind", "idmap",
}  # fmt: skip


def parse_volume(value: str) -> model.VolumeMount:
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise FieldError(
            f"invalid volume {value!r}",
            "use SRC:DST[:OPTIONS], SRC an absolute host path or a volume name",
        )
    source, target = parts[0], parts[1]
    options = tuple(parts[2].split(",")) if len(parts) == 3 else ()
    if source.startswith("."):
        raise FieldError(
            f"invalid volume {value!r}: relative host path {source!r}",
            "systemd units have no working directory: use an absolute path",
        )
    if not source.startswith("/"):
        try:
            check_name(source)
        except FieldError:
            raise FieldError(f"invalid volume {value!r}: bad volume name {source!r}") from None
    if not target.startswith("/"):
        raise FieldError(f"invalid volume {value!r}: target {target!r} is not absolute")
    for option in options:
        if option not in _VOLUME_OPTIONS:
            raise FieldError(
                f"invalid volume {value!r}: unknown option {option!r}",
                did_you_mean(option, _VOLUME_OPTIONS),
            )
    return model.VolumeMount(source, target, options)


def check_volume(value: str) -> str:
    parse_volume(value)
    return value


def check_tmpfs(value: str) -> str:
    path, _, options = value.partition(":")
    check_abs_path(path)
    if ":" in value and (not options or " " in options):
        raise FieldError(f"invalid tmpfs {value!r}", "use PATH[:OPTIONS], e.g. '/tmp:size=64m'")
    return value


def check_device(value: str) -> str:
    parts = value.split(":")
    if len(parts) > 3 or not parts[0].startswith("/"):
        raise FieldError(f"invalid device {value!r}", "use HOST_PATH[:CONTAINER_PATH][:PERMS]")
    rest = parts[1:]
    if rest and re.fullmatch(r"[rwm]+", rest[-1]):
        rest = rest[:-1]
    if any(not p.startswith("/") for p in rest):
        raise FieldError(f"invalid device {value!r}", "use HOST_PATH[:CONTAINER_PATH][:PERMS]")
    return value


def check_mount(value: str) -> str:
    fields = dict(part.partition("=")[::2] for part in value.split(","))
    if "type" not in fields or not ({"destination", "target", "dst"} & set(fields)):
        raise FieldError(
            f"invalid mount {value!r}",
            "use podman --mount syntax: 'type=bind,source=/src,destination=/dst'",
        )
    return value


def check_ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise FieldError(f"invalid IP address {value!r}") from None
    return value


def check_add_host(value: str) -> str:
    host, sep, address = value.partition(":")
    if not sep or not host or not re.fullmatch(r"[A-Za-z0-9_.-]+", host):
        raise FieldError(f"invalid host entry {value!r}", "use 'HOSTNAME:IP'")
    if address != "host-gateway":
        try:
            ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise FieldError(f"invalid host entry {value!r}: bad IP {address!r}") from None
    return value


def check_hostname(value: str) -> str:
    label = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    if len(value) > 253 or not re.fullmatch(rf"{label}(?:\.{label})*", value):
        raise FieldError(f"invalid hostname {value!r}")
    return value


def check_capability(value: str) -> str:
    if value.upper() != "ALL" and not re.fullmatch(r"(?:CAP_)?[A-Z_]+", value.upper()):
        raise FieldError(f"invalid capability {value!r}", "e.g. 'CAP_NET_RAW'")
    return value


_ULIMITS = {
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}  # fmt: skip


def check_ulimit(value: str) -> str:
    match = re.fullmatch(r"([a-z]+)=(-1|unlimited|\d+)(?::(-1|unlimited|\d+))?", value)
    if not match:
        raise FieldError(
            f"invalid ulimit {value!r}", "use NAME=SOFT[:HARD], e.g. 'nofile=1024:2048'"
        )
    if match.group(1) not in _ULIMITS:
        raise FieldError(
            f"unknown ulimit {match.group(1)!r}", did_you_mean(match.group(1), _ULIMITS)
        )
    return value


def check_env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise FieldError(f"invalid environment variable name {value!r}")
    return value


def check_label_key(value: str) -> str:
    if not value or "=" in value or any(c.isspace() for c in value):
        raise FieldError(f"invalid label key {value!r}: no spaces or '='")
    return value


def check_sysctl(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9_./-]+", value):
        raise FieldError(f"invalid sysctl name {value!r}", "e.g. 'net.ipv4.ip_forward'")
    return value


def check_signal(value: str) -> str:
    if not re.fullmatch(r"(?:SIG)?(?:[A-Z][A-Z0-9]*|RTMIN\+\d+|RTMAX-\d+)|\d+", value):
        raise FieldError(f"invalid signal {value!r}", "e.g. 'SIGTERM' or 'SIGRTMIN+3'")
    return value


def check_schedule(value: str) -> str:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise FieldError(f"invalid time {value!r}", "use a daily local time 'HH:MM', e.g. '03:00'")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def check_registry_host(value: str) -> str:
    if not re.fullmatch(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::\d{1,5})?", value):
        raise FieldError(f"invalid registry host {value!r}", "use HOST[:PORT]")
    return value


def one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise FieldError(
                f"invalid value {value!r}: expected one of {', '.join(choices)}",
                did_you_mean(value, choices),
            )
        return value

    return check


# ---------------------------------------------------------------------------------------------
# Tables

WATCH_KEYS = ("state_dir", "auth_file", "parallel")
REGISTRY_KEYS = ("tls_verify",)
VOLUME_KEYS = ("driver", "options", "labels", "copy")
HEALTH_KEYS = ("cmd", "interval", "timeout", "retries", "start_period", "on_failure")
UNIT_KEYS = ("description", "after", "wants", "requires", "before", "extra")
SERVICE_KEYS = ("restart", "restart_sec", "timeout_start", "timeout_stop", "extra")
INSTALL_KEYS = ("wanted_by", "extra")
UPDATE_KEYS = (
    "policy", "schedule", "randomized_delay", "interval", "min_age", "health_cmd",
    "health_timeout", "keep_images",
)  # fmt: skip
SUBTABLES = ("health", "unit", "service", "install", "update")
CONTAINER_KEYS = (
    "preset", "variant", "image", "container_name", "description", "command", "entrypoint",
    "network", "hostname", "dns", "dns_search", "add_hosts", "ports", "volumes", "mounts",
    "tmpfs", "environment", "environment_files", "environment_host", "cap_add", "cap_drop",
    "devices", "labels", "annotations", "user", "group", "group_add", "working_dir", "userns",
    "ulimits", "sysctls", "cgroupns", "tty", "init", "read_only", "no_new_privileges",
    "privileged", "timezone", "log_driver", "stop_signal", "stop_timeout", "pull", "notify",
    "podman_args", "global_args",
)  # fmt: skip
TOP_KEYS = ("watch", "registries", "volumes", "containers")


def _parse_watch(table: _Table | None) -> model.WatchSettings:
    if table is None:
        return model.WatchSettings()
    return model.WatchSettings(
        state_dir=table.text("state_dir", model.DEFAULT_STATE_DIR, check_abs_path),
        auth_file=table.text("auth_file", "", check_abs_path),
        parallel=table.integer("parallel", 4, minimum=1, maximum=64),
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
    if preset is None:
        if variant is not None:
            ctx.error((*path, "variant"), "'variant' needs 'preset'")
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
    base = presets.preset_values(preset, variant, name)
    for key, value in base.items():
        if key in SUBTABLES and isinstance(merged.get(key), dict):
            merged[key] = {**value, **merged[key]}
        elif key not in merged:
            merged[key] = value
    return merged


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
    return model.HealthSpec(
        cmd=cmd,
        interval=table.duration("interval", 30),
        timeout=table.duration("timeout", 30),
        retries=table.integer("retries", 3, minimum=0),
        start_period=table.duration("start_period", 0),
        on_failure=table.text("on_failure", "", one_of("none", "kill", "restart", "stop")),
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
    return model.UnitSection(
        description=table.text("description"),
        after=table.strlist("after", default.after, check_unit_name),
        wants=table.strlist("wants", default.wants, check_unit_name),
        requires=table.strlist("requires", (), check_unit_name),
        before=table.strlist("before", (), check_unit_name),
        extra=table.raw_keys("extra", _OWNED_UNIT_KEYS),
    )


_RESTART = ("no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always")


def _parse_service(table: _Table | None) -> model.ServiceSection:
    if table is None:
        return model.ServiceSection()
    return model.ServiceSection(
        restart=table.text("restart", "on-failure", one_of(*_RESTART)),
        restart_sec=table.duration("restart_sec", 10),
        timeout_start=table.duration("timeout_start", 900),
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


def _parse_update(table: _Table | None) -> model.UpdateSpec:
    if table is None:
        return model.UpdateSpec()
    interval = table.opt_duration("interval")
    schedule: str | None = table.text("schedule", "03:00", check_schedule)
    if interval is not None:
        if table.has("schedule"):
            table.ctx.error(
                (*table.path, "interval"), "set either 'schedule' or 'interval', not both"
            )
        if interval <= 0:
            table.ctx.error((*table.path, "interval"), "must be longer than 0s")
        schedule = None
    return model.UpdateSpec(
        policy=table.text("policy", "auto", one_of("auto", "notify", "off")),
        schedule=schedule,
        randomized_delay=table.duration("randomized_delay", 3600),
        interval=interval,
        min_age=table.duration("min_age", 0),
        health_cmd=table.strlist("health_cmd"),
        health_timeout=table.duration("health_timeout", 300),
        keep_images=table.integer("keep_images", 1, minimum=0, maximum=100),
    )


def _parse_notify(table: _Table) -> str:
    value = table.data.get("notify")
    if value is None or value is False:
        return ""
    if value is True:
        return "true"
    if value == "healthy":
        return "healthy"
    table.ctx.error((*table.path, "notify"), f'expected true, false or "healthy", got {value!r}')
    return ""


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
    volumes = [parse_volume(text) for text in t.strlist("volumes", (), check_volume)]

    spec = model.ContainerSpec(
        name=name,
        image=image,
        container_name=t.text("container_name", "", check_name),
        description=t.text("description"),
        preset=merged.get("preset") if isinstance(merged.get("preset"), str) else None,
        variant=merged.get("variant") if isinstance(merged.get("variant"), str) else None,
        command=t.strlist("command"),
        entrypoint=t.text("entrypoint"),
        network=t.text("network", "", check_word),
        hostname=t.text("hostname", "", check_hostname),
        dns=t.strlist("dns", (), check_ip),
        dns_search=t.strlist("dns_search", (), check_word),
        add_hosts=t.strlist("add_hosts", (), check_add_host),
        ports=t.strlist("ports", (), check_port),
        volumes=tuple(volumes),
        mounts=t.strlist("mounts", (), check_mount),
        tmpfs=t.strlist("tmpfs", (), check_tmpfs),
        environment=t.strmap("environment", (), check_env_name),
        environment_files=t.strlist("environment_files", (), check_abs_path),
        environment_host=t.flag("environment_host"),
        cap_add=t.strlist("cap_add", (), check_capability),
        cap_drop=t.strlist("cap_drop", (), check_capability),
        devices=t.strlist("devices", (), check_device),
        labels=t.strmap("labels", (), check_label_key),
        annotations=t.strmap("annotations", (), check_label_key),
        user=t.text("user", "", check_word),
        group=t.text("group", "", check_word),
        group_add=t.strlist("group_add", (), check_word),
        working_dir=t.text("working_dir", "", check_abs_path),
        userns=t.text("userns", "", check_word),
        ulimits=t.strlist("ulimits", (), check_ulimit),
        sysctls=t.strmap("sysctls", (), check_sysctl),
        cgroupns=t.text("cgroupns", "", one_of("host", "private")),
        tty=t.flag("tty"),
        init=t.flag("init"),
        read_only=t.flag("read_only"),
        no_new_privileges=t.flag("no_new_privileges"),
        privileged=t.flag("privileged"),
        timezone=t.text("timezone", "", check_word),
        log_driver=t.text("log_driver", "", check_word),
        stop_signal=t.text("stop_signal", "", check_signal),
        stop_timeout=t.integer("stop_timeout", 0, minimum=0),
        pull=t.text("pull", "", one_of("missing", "always", "newer", "never")),
        notify=_parse_notify(t),
        podman_args=t.strlist("podman_args", (), _check_nonempty),
        global_args=t.strlist("global_args", (), _check_nonempty),
        health=_parse_health(t.table("health", HEALTH_KEYS)),
        unit=_parse_unit(t.table("unit", UNIT_KEYS)),
        service=_parse_service(t.table("service", SERVICE_KEYS)),
        install=_parse_install(t.table("install", INSTALL_KEYS)),
        update=_parse_update(t.table("update", UPDATE_KEYS)),
        **extension_values,
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
    if spec.update.policy != "off" and spec.image_ref.digest and not spec.image_ref.tag:
        ctx.error(
            (*path, "image"),
            "an image pinned by digest alone cannot be upgraded",
            'add a tag, or set update.policy = "off"',
        )
    return spec


def _check_nonempty(value: str) -> str:
    if not value:
        raise FieldError("empty argument")
    return value


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


def parse_config(text: str, source: str) -> model.Config:
    """Parse and validate a whole configuration; raise ConfigError(s) naming every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(source, exc) from None
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

    raise_collected(sorted(ctx.errors, key=lambda e: e.line or 0))
    return model.Config(
        source=source,
        watch=watch,
        registries=tuple(sorted(registries, key=lambda r: r.host)),
        volumes=tuple(declared[name] for name in sorted(declared)),
        containers=tuple(sorted(containers, key=lambda c: c.name)),
    )


def default_config() -> model.Config:
    """The built-in default: the recommended (systemd) perfSONAR testpoint."""
    return parse_config(DEFAULT_CONFIG_TEXT, BUILTIN_SOURCE)


def load_config(path: Path | None) -> model.Config:
    """Load ``path``; None means the default file if it exists, else the built-in default."""
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return default_config()
        path = DEFAULT_CONFIG_PATH
    source = str(path)
    if source == "-":
        return parse_config(sys.stdin.read(), "<stdin>")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(source, None, "", f"cannot read: {exc.strerror or exc}") from None
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
