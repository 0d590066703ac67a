"""Value checks for configuration settings: each returns the (possibly normalised) value or
raises ``FieldError``.

They know nothing about TOML or key paths: ``config`` calls them and turns a ``FieldError`` into
a located ``ConfigError``; ``schema`` names the check of each setting; ``import`` reuses them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from psquadlet import imageref, model
from psquadlet.errors import did_you_mean


class FieldError(Exception):
    """Raised by value checks (and by extension table parsers) for one bad value.

    ``key`` is a dotted path relative to the table being checked ("" for the value itself).
    """

    def __init__(self, message: str, hint: str | None = None, key: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.key = key


_DURATION_RE = re.compile(r"(\d+)\s*(d|h|m|s)")
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str, maximum: int | None = None) -> int:
    """``"1h30m"`` -> 5400. Bare digits are seconds. Longer than ``maximum``: FieldError."""
    stripped = text.strip()
    if len(stripped) > 64:
        raise FieldError("duration too long", 'use a number with a unit: "90s", "1h30m"')
    if stripped.isdigit():
        return check_bound(int(stripped), maximum)
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
    return check_bound(total, maximum)


def format_seconds(seconds: int) -> str:
    """3600 -> "1h", 90 -> "90s": how bounds are spelt in messages."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def check_bound(seconds: int, maximum: int | None) -> int:
    if seconds < 0:
        raise FieldError(f"must be >= 0, got {seconds}")
    if maximum is not None and seconds > maximum:
        shown = seconds if seconds < 10**12 else "a number too large"
        raise FieldError(f"must be at most {maximum} ({format_seconds(maximum)}), got {shown}")
    return seconds


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
    if '"' in value:
        # Quadlet reads Mount= as CSV: a quote makes it drop the whole unit.
        raise FieldError(f"invalid mount {value!r}: '\"' is not allowed in a mount")
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


def check_label_key(value: str) -> str:
    if not value or "=" in value or any(c.isspace() for c in value):
        raise FieldError(f"invalid label key {value!r}: no spaces or '='")
    return value


def check_schedule(value: str) -> str:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise FieldError(f"invalid time {value!r}", "use a daily local time 'HH:MM', e.g. '03:00'")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


_SECRET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SECRET_OPTIONS = ("type", "target", "uid", "gid", "mode")


def check_secret(value: str) -> str:
    """``NAME[,type=mount|env][,target=T][,uid=N][,gid=N][,mode=N]`` (podman run --secret)."""
    name, *options = value.split(",")
    if not _SECRET_RE.fullmatch(name) or len(name) > 253:
        raise FieldError(f"invalid secret {value!r}", "use NAME[,type=mount|env][,target=TARGET]")
    for option in options:
        key, sep, setting = option.partition("=")
        if key not in _SECRET_OPTIONS or not sep or not re.fullmatch(r"[A-Za-z0-9_./-]+", setting):
            raise FieldError(
                f"invalid secret {value!r}: bad option {option!r}",
                f"options are {', '.join(_SECRET_OPTIONS)} with a value, e.g. 'type=env'",
            )
        if key == "type" and setting not in ("mount", "env"):
            raise FieldError(f"invalid secret {value!r}: type is 'mount' or 'env'")
    return value


def check_memory(value: str) -> str:
    """podman run --memory: ``NUMBER[b|k|m|g]``, at most 1 PiB."""
    match = re.fullmatch(r"(\d{1,16})([bkmgBKMG]?)", value)
    size = int(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()] if match else 0
    if not match or not 0 < size <= MAX_MEMORY:
        raise FieldError(f"invalid memory limit {value!r}", "e.g. '512m' or '2g' (up to 1 PiB)")
    return value


_MEMORY_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
MAX_MEMORY = 1 << 50


def _pattern(regex: str, what: str, hint: str | None = None) -> Callable[[str], str]:
    """A check that the whole value matches ``regex``; else "invalid WHAT 'value' (hint)"."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise FieldError(f"invalid {what} {value!r}", hint)
        return value

    return check


check_unit_name = _pattern(
    r"[A-Za-z0-9:_.\\@-]+\.[a-z]+", "unit name", "e.g. 'network-online.target'"
)
check_env_name = _pattern(r"[A-Za-z_][A-Za-z0-9_]*", "environment variable name")
check_sysctl = _pattern(r"[a-z0-9_./-]+", "sysctl name", "e.g. 'net.ipv4.ip_forward'")
check_signal = _pattern(
    r"(?:SIG)?(?:[A-Z][A-Z0-9]*|RTMIN\+\d+|RTMAX-\d+)|\d+",
    "signal",
    "e.g. 'SIGTERM' or 'SIGRTMIN+3'",
)
check_registry_host = _pattern(
    r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::\d{1,5})?", "registry host", "use HOST[:PORT]"
)


def one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise FieldError(
                f"invalid value {value!r}: expected one of {', '.join(choices)}",
                did_you_mean(value, choices),
            )
        return value

    return check


def check_nonempty(value: str) -> str:
    if not value:
        raise FieldError("empty argument")
    return value
