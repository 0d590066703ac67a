"""What ``psquadlet import`` knows about ``docker run`` / ``podman run`` flags: the flag table.

One row per flag with its short form, whether it takes a value, and what becomes of it (a
configuration key, raw ``podman_args``, or dropped with the reason), and the handlers the rows
name. ``dockerrun`` parses a command line and applies the rows; ``composeservice`` reuses the
handlers for compose keys that mean the same (``extra_hosts``, ``user``, ``restart``...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

from psquadlet.importer import durations
from psquadlet.importer.draft import APPROXIMATED, DROPPED, RAW, Draft, ImportInputError


@dataclass
class RunContext:
    """What handlers need besides the draft: which CLI, the environment, the folder."""

    program: str
    environ: Mapping[str, str]
    cwd: str
    health: list[tuple[str, str]]


Handler = Callable[[Draft, RunContext, str, str], None]


@dataclass(frozen=True)
class Flag:
    """One ``docker run`` flag; ``apply(draft, ctx, flag_as_written, value)``.

    Boolean flags get the value "true" or "false" (``--rm=false``).
    """

    long: str
    short: str
    takes_value: bool
    apply: Handler
    podman_only: bool = False
    aliases: tuple[str, ...] = ()


# ---- handlers -------------------------------------------------------------------------------


def truth(flag: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "t"):
        return True
    if lowered in ("false", "0", "f"):
        return False
    raise ImportInputError(f"invalid boolean value {value!r} for {flag}")


def to_key(name: str) -> Handler:
    def apply(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
        d.set(name, value)

    return apply


def to_list(name: str) -> Handler:
    def apply(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
        d.append(name, value)

    return apply


def to_bool(name: str) -> Handler:
    def apply(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
        d.set(name, truth(flag, value))

    return apply


def to_int(name: str) -> Handler:
    def apply(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
        d.set(name, durations.whole_number(value, flag))

    return apply


def to_map(name: str, value_required: bool = False) -> Handler:
    def apply(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
        map_key, sep, map_value = value.partition("=")
        if not map_key or (value_required and not sep):
            raise ImportInputError(f"{flag} needs KEY=VALUE, not {value!r}")
        d.put(name, map_key, map_value)

    return apply


def raw(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    """No configuration key: the flag goes to podman_args as one word, in its long form."""
    spec = lookup(ctx.program, flag)
    d.raw(f"--{spec.long}={value}" if spec.takes_value or value != "true" else f"--{spec.long}")


def raw_noted(reason: str) -> Handler:
    def apply(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
        raw(d, ctx, flag, value)
        d.note(RAW, f"{flag} {value}" if lookup(ctx.program, flag).takes_value else flag, reason)

    return apply


def drop(reason: str) -> Handler:
    def apply(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
        if lookup(ctx.program, flag).takes_value:
            shown = f"{flag} {value}"
        else:
            shown = flag if value == "true" else f"{flag}={value}"
        d.note(DROPPED, shown, reason)

    return apply


def _name(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    d.name = value


def _env(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    name, sep, env_value = value.partition("=")
    if not name:
        raise ImportInputError(f"{flag} needs NAME=VALUE or NAME, not {value!r}")
    put_env(
        d,
        f"{flag} {name}",
        name,
        env_value if sep else None,
        ctx.environ,
        copied="the value was copied from the environment of the import (docker copies it from "
        "the environment of each docker run); check that it belongs in the file",
        unset="the variable is not set, so docker would not set it",
    )


def put_env(
    d: Draft,
    subject: str,
    name: str,
    value: str | None,
    environ: Mapping[str, str],
    *,
    copied: str,
    unset: str,
) -> None:
    """``NAME=VALUE`` sets the variable; a bare ``NAME`` (value None) copies its value from
    ``environ``, noted with ``copied``, or is dropped, noted with ``unset``."""
    if value is not None:
        d.put("environment", name, value)
    elif name in environ:
        d.put("environment", name, environ[name])
        d.note(APPROXIMATED, subject, copied)
    else:
        d.note(DROPPED, subject, unset)


def _path(ctx: RunContext, path: str) -> str:
    return os.path.normpath(os.path.join(ctx.cwd, os.path.expanduser(path)))


def _env_file(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    d.append("environment_files", _path(ctx, value))


def _volume(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    source, sep, rest = value.partition(":")
    if not sep:
        d.raw(f"--volume={value}")
        d.note(RAW, f"{flag} {value}", "an anonymous volume has no configuration key")
        return
    if source.startswith((".", "~")):
        absolute = _path(ctx, source)
        d.note(
            APPROXIMATED,
            f"{flag} {value}",
            f"the relative path {source!r} was made absolute against {ctx.cwd}: {absolute}",
        )
        source = absolute
    d.append("volumes", f"{source}:{rest}")


def _mount(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    """A relative bind source would be read by Quadlet against the unit's folder."""
    fields = value.split(",")
    for i, field_text in enumerate(fields):
        name, sep, source = field_text.partition("=")
        if sep and name in ("source", "src") and source.startswith((".", "~")):
            fields[i] = f"{name}={_path(ctx, source)}"
            d.note(
                APPROXIMATED,
                f"{flag} {value}",
                f"the relative path {source!r} was made absolute against {ctx.cwd}",
            )
    d.append("mounts", ",".join(fields))


def _network(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    if "network" in d.settings:
        d.raw(f"--network={value}")
        d.note(RAW, f"{flag} {value}", "only the first network has a configuration key")
        return
    d.set("network", value)


def user(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    user, sep, group = value.partition(":")
    if not user:
        raise ImportInputError(f"{flag} needs USER[:GROUP], not {value!r}")
    d.set("user", user)
    if sep:
        d.set("group", group)


def add_host(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    host, sep, address = value.partition("=")
    if sep:
        value = f"{host}:{address}"
    elif ":" not in value:
        raise ImportInputError(f"{flag} needs HOST:IP, not {value!r}")
    d.append("add_hosts", value)


_RESTART = re.compile(r"(no|always|unless-stopped|on-failure)(?::(-?\d+))?")
START_LIMIT_WINDOW = "1h"


def restart(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    match = _RESTART.fullmatch(value)
    if match is None:
        raise ImportInputError(
            f"{flag}: unknown restart policy {value!r} (no, always, unless-stopped, "
            "on-failure[:max-retries])"
        )
    policy = match.group(1)
    count = None if match.group(2) is None else durations.whole_number(match.group(2), flag)
    service = d.section("service")
    if count is not None and policy != "on-failure":
        raise ImportInputError(f"{flag}: only on-failure takes a retry count, not {value!r}")
    if policy == "unless-stopped":
        service["restart"] = "always"
        d.note(
            APPROXIMATED,
            f"{flag} {value}",
            "Restart=always: systemd never restarts a unit stopped with systemctl stop, "
            "which is what unless-stopped means",
        )
    elif policy == "on-failure" and count is not None and count > 0:
        service["restart"] = "on-failure"
        unit_extra = d.section("unit").setdefault("extra", {})
        assert isinstance(unit_extra, dict)
        unit_extra["StartLimitBurst"] = str(count + 1)
        unit_extra["StartLimitIntervalSec"] = START_LIMIT_WINDOW
        d.note(
            APPROXIMATED,
            f"{flag} {value}",
            f"Restart=on-failure with StartLimitBurst={count + 1} within "
            f"StartLimitIntervalSec={START_LIMIT_WINDOW}: systemd counts starts in a time "
            f"window where docker counts {count} restarts in all",
        )
    else:
        service["restart"] = policy


def _health(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    ctx.health.append((lookup(ctx.program, flag).long, value))


def security_opt(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    match = re.fullmatch(r"no-new-privileges(?:[:=](.*))?", value)
    if match:
        d.set("no_new_privileges", truth(flag, match.group(1) or "true"))
        return
    d.raw(f"--security-opt={value}")


def _sdnotify(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    if value == "container":
        d.set("notify", True)
    elif value == "healthy":
        d.set("notify", "healthy")
    elif value == "conmon":
        d.note(DROPPED, f"{flag} {value}", "conmon is what Quadlet uses anyway")
    else:
        d.note(DROPPED, f"{flag} {value}", "a systemd unit must hear from conmon or the container")


def _entrypoint(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    d.set("entrypoint", value)


# ---- the table ------------------------------------------------------------------------------

_SYSTEMD_DETACH = "systemd runs the container as a service; Quadlet passes --detach itself"
_INTERACTIVE = "a service has no terminal input to keep open"
_WINDOWS = "Windows containers only"
_CIDFILE = "Quadlet manages the container ID file itself"
_PODMAN_HAS_NONE = "podman run has no such option"

B, V = False, True

# Flags passed on to podman as is (no configuration key), then every other flag.
# fmt: off
_DOCKER_RAW_WITH_VALUE = (
    "blkio-weight", "blkio-weight-device", "cgroup-parent", "cpu-period", "cpu-quota",
    "cpu-rt-period", "cpu-rt-runtime", "cpus", "cpuset-cpus", "cpuset-mems",
    "device-cgroup-rule", "device-read-bps", "device-read-iops", "device-write-bps",
    "device-write-iops", "domainname", "expose", "gpus", "ip", "ip6", "ipc", "label-file",
    "log-opt", "mac-address", "memory-reservation", "memory-swap", "memory-swappiness",
    "oom-score-adj", "pid", "pids-limit", "platform", "runtime", "shm-size", "storage-opt",
    "uts", "volumes-from",
)
_DOCKER_RAW_SWITCHES = (
    "no-healthcheck", "oom-kill-disable",
)
# fmt: on
DOCKER_FLAGS: tuple[Flag, ...] = (
    *(Flag(name, "", V, raw) for name in _DOCKER_RAW_WITH_VALUE),
    *(Flag(name, "", B, raw) for name in _DOCKER_RAW_SWITCHES),
    Flag("add-host", "", V, add_host),
    Flag("annotation", "", V, to_map("annotations")),
    Flag("attach", "a", V, drop("a service's output goes to the journal, not to a terminal")),
    Flag("cap-add", "", V, to_list("cap_add")),
    Flag("cap-drop", "", V, to_list("cap_drop")),
    Flag("cgroupns", "", V, to_key("cgroupns")),
    Flag("cidfile", "", V, drop(_CIDFILE)),
    Flag("cpu-count", "", V, drop(_WINDOWS)),
    Flag("cpu-percent", "", V, drop(_WINDOWS)),
    Flag("cpu-shares", "c", V, raw),
    Flag("detach", "d", B, drop(_SYSTEMD_DETACH)),
    Flag("detach-keys", "", V, drop(_INTERACTIVE)),
    Flag("device", "", V, to_list("devices")),
    Flag("disable-content-trust", "", B, drop("Docker Content Trust does not exist in podman")),
    Flag("dns", "", V, to_list("dns")),
    Flag("dns-option", "", V, raw, aliases=("dns-opt",)),
    Flag("dns-search", "", V, to_list("dns_search")),
    Flag("entrypoint", "", V, _entrypoint),
    Flag("env", "e", V, _env),
    Flag("env-file", "", V, _env_file),
    Flag("group-add", "", V, to_list("group_add")),
    Flag("health-cmd", "", V, _health),
    Flag("health-interval", "", V, _health),
    Flag("health-retries", "", V, _health),
    Flag("health-start-interval", "", V, _health),
    Flag("health-start-period", "", V, _health),
    Flag("health-timeout", "", V, _health),
    Flag("help", "", B, drop("not a container option")),
    Flag("hostname", "h", V, to_key("hostname")),
    Flag("init", "", B, to_bool("init")),
    Flag("interactive", "i", B, drop(_INTERACTIVE)),
    Flag("io-maxbandwidth", "", V, drop(_WINDOWS)),
    Flag("io-maxiops", "", V, drop(_WINDOWS)),
    Flag("isolation", "", V, drop(_WINDOWS)),
    Flag("kernel-memory", "", V, drop("kernel memory limits are gone from cgroup v2 and podman")),
    Flag("label", "l", V, to_map("labels")),
    Flag("link", "", V, drop("legacy Docker links: put both containers on one network")),
    Flag("link-local-ip", "", V, drop(_PODMAN_HAS_NONE)),
    Flag("log-driver", "", V, to_key("log_driver")),
    Flag("memory", "m", V, raw),
    Flag("mount", "", V, _mount),
    Flag("name", "", V, _name),
    Flag("network", "", V, _network, aliases=("net",)),
    Flag("network-alias", "", V, raw, aliases=("net-alias",)),
    Flag("privileged", "", B, to_bool("privileged")),
    Flag("publish", "p", V, to_list("ports")),
    Flag("publish-all", "P", B, raw),
    Flag("pull", "", V, to_key("pull")),
    Flag("quiet", "q", B, drop("pull progress goes to the journal")),
    Flag("read-only", "", B, to_bool("read_only")),
    Flag("restart", "", V, restart),
    Flag("rm", "", B, drop("Quadlet always runs the container with --rm: the unit owns it")),
    Flag("security-opt", "", V, security_opt),
    Flag("sig-proxy", "", B, drop("systemd delivers signals to the container through podman")),
    Flag("stop-signal", "", V, to_key("stop_signal")),
    Flag("stop-timeout", "", V, to_int("stop_timeout")),
    Flag("sysctl", "", V, to_map("sysctls", value_required=True)),
    Flag("tmpfs", "", V, to_list("tmpfs")),
    Flag("tty", "t", B, to_bool("tty")),
    Flag("ulimit", "", V, to_list("ulimits")),
    Flag("use-api-socket", "", B, drop("there is no Docker API socket to share under podman")),
    Flag("user", "u", V, user),
    Flag("userns", "", V, to_key("userns")),
    Flag("volume", "v", V, _volume),
    Flag("volume-driver", "", V, drop("set the driver in [volumes.NAME] instead")),
    Flag("workdir", "w", V, to_key("working_dir")),
)

# Flags only podman run has (a podman run line may carry them): first those passed on as is.
# fmt: off
_PODMAN_RAW_WITH_VALUE = (
    "arch", "authfile", "cert-dir", "cgroup-conf", "chrootdirs", "creds", "decryption-key",
    "env-merge", "gidmap", "group-entry", "health-log-destination", "health-max-log-count",
    "health-max-log-size", "health-startup-cmd", "health-startup-interval",
    "health-startup-retries", "health-startup-success", "health-startup-timeout", "hostuser",
    "image-volume", "init-path", "os", "passwd-entry", "personality", "pod", "pod-id-file",
    "rdt-class", "requires", "retry", "retry-delay", "seccomp-policy", "secret",
    "shm-size-systemd", "subgidname", "subuidname", "systemd", "timeout", "uidmap", "umask",
    "unsetenv", "variant",
)
_PODMAN_RAW_SWITCHES = (
    "http-proxy", "no-hosts", "passwd", "read-only-tmpfs", "tls-verify", "unsetenv-all",
)
# fmt: on
PODMAN_FLAGS: tuple[Flag, ...] = (
    *(Flag(name, "", V, raw, podman_only=True) for name in _PODMAN_RAW_WITH_VALUE),
    *(Flag(name, "", B, raw, podman_only=True) for name in _PODMAN_RAW_SWITCHES),
    Flag(
        "cgroups",
        "",
        V,
        raw_noted("Quadlet passes --cgroups=split; this one comes after it"),
        podman_only=True,
    ),
    Flag("conmon-pidfile", "", V, drop("Quadlet tracks the container itself"), podman_only=True),
    Flag("env-host", "", B, to_bool("environment_host"), podman_only=True),
    Flag("health-on-failure", "", V, _health, podman_only=True),
    Flag("pidfile", "", V, drop("Quadlet tracks the container itself"), podman_only=True),
    Flag("preserve-fd", "", V, drop("a unit has no descriptors to hand over"), podman_only=True),
    Flag("preserve-fds", "", V, drop("a unit has no descriptors to hand over"), podman_only=True),
    Flag("replace", "", B, drop("Quadlet always passes --replace"), podman_only=True),
    Flag("sdnotify", "", V, _sdnotify, podman_only=True),
    Flag("tz", "", V, to_key("timezone"), podman_only=True),
)

LONG_FLAGS: dict[str, dict[str, Flag]] = {"docker": {}, "podman": {}}
SHORT_FLAGS: dict[str, dict[str, Flag]] = {"docker": {}, "podman": {}}
for _flag in DOCKER_FLAGS + PODMAN_FLAGS:
    for _program in ("docker", "podman"):
        if _flag.podman_only and _program == "docker":
            continue
        for _name_ in (_flag.long, *_flag.aliases):
            LONG_FLAGS[_program][_name_] = _flag
        if _flag.short:
            SHORT_FLAGS[_program][_flag.short] = _flag


def lookup(program: str, flag_as_written: str) -> Flag:
    """The table row of a flag as it was written (``-p``, ``--publish``, ``--net``)."""
    if flag_as_written.startswith("--"):
        return LONG_FLAGS[program][flag_as_written[2:]]
    return SHORT_FLAGS[program][flag_as_written[1:]]
