"""``docker run`` / ``podman run`` command lines -> a container draft.

The flag table below is the whole of what import knows about ``docker run``: one row per flag
with its short form, whether it takes a value, and what becomes of it (a configuration key,
raw ``podman_args``, or dropped with the reason). Parsing follows Docker's CLI library (pflag)
exactly, so that a line that works with ``docker run`` is read the same way here: long flags
as ``--flag=value`` or ``--flag value``, short flags combined (``-itd``) or with their value
attached (``-p8080:80``, ``-p=8080:80``), booleans as ``--flag=false``, repeated flags, ``--``
ending the flags, and flags stopping at the image (what follows is the command).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable

from psquadlet import imageref
from psquadlet.errors import did_you_mean
from psquadlet.importer import durations
from psquadlet.importer.draft import APPROXIMATED, DROPPED, RAW, Draft, ImportInputError
from psquadlet.tomlwriter import TomlValue


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


def _truth(flag: str, value: str) -> bool:
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
        d.set(name, _truth(flag, value))

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
    spec = _lookup(ctx.program, flag)
    d.raw(f"--{spec.long}={value}" if spec.takes_value or value != "true" else f"--{spec.long}")


def raw_noted(reason: str) -> Handler:
    def apply(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
        raw(d, ctx, flag, value)
        d.note(RAW, f"{flag} {value}" if _lookup(ctx.program, flag).takes_value else flag, reason)

    return apply


def drop(reason: str) -> Handler:
    def apply(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
        if _lookup(ctx.program, flag).takes_value:
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


def _user(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    user, sep, group = value.partition(":")
    if not user:
        raise ImportInputError(f"{flag} needs USER[:GROUP], not {value!r}")
    d.set("user", user)
    if sep:
        d.set("group", group)


def _add_host(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    host, sep, address = value.partition("=")
    if sep:
        value = f"{host}:{address}"
    elif ":" not in value:
        raise ImportInputError(f"{flag} needs HOST:IP, not {value!r}")
    d.append("add_hosts", value)


_RESTART = re.compile(r"(no|always|unless-stopped|on-failure)(?::(-?\d+))?")
START_LIMIT_WINDOW = "1h"


def _restart(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
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
    ctx.health.append((_lookup(ctx.program, flag).long, value))


def _security_opt(d: Draft, ctx: RunContext, flag: str, value: str) -> None:
    match = re.fullmatch(r"no-new-privileges(?:[:=](.*))?", value)
    if match:
        d.set("no_new_privileges", _truth(flag, match.group(1) or "true"))
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
    Flag("add-host", "", V, _add_host),
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
    Flag("restart", "", V, _restart),
    Flag("rm", "", B, drop("Quadlet always runs the container with --rm: the unit owns it")),
    Flag("security-opt", "", V, _security_opt),
    Flag("sig-proxy", "", B, drop("systemd delivers signals to the container through podman")),
    Flag("stop-signal", "", V, to_key("stop_signal")),
    Flag("stop-timeout", "", V, to_int("stop_timeout")),
    Flag("sysctl", "", V, to_map("sysctls", value_required=True)),
    Flag("tmpfs", "", V, to_list("tmpfs")),
    Flag("tty", "t", B, to_bool("tty")),
    Flag("ulimit", "", V, to_list("ulimits")),
    Flag("use-api-socket", "", B, drop("there is no Docker API socket to share under podman")),
    Flag("user", "u", V, _user),
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

_LONG: dict[str, dict[str, Flag]] = {"docker": {}, "podman": {}}
_SHORT: dict[str, dict[str, Flag]] = {"docker": {}, "podman": {}}
for _flag in DOCKER_FLAGS + PODMAN_FLAGS:
    for _program in ("docker", "podman"):
        if _flag.podman_only and _program == "docker":
            continue
        for _name_ in (_flag.long, *_flag.aliases):
            _LONG[_program][_name_] = _flag
        if _flag.short:
            _SHORT[_program][_flag.short] = _flag


def _lookup(program: str, flag_as_written: str) -> Flag:
    """The table row of a flag as it was written (``-p``, ``--publish``, ``--net``)."""
    if flag_as_written.startswith("--"):
        return _LONG[program][flag_as_written[2:]]
    return _SHORT[program][flag_as_written[1:]]


# Global options before the subcommand: name -> takes a value.
_DOCKER_GLOBAL = {
    "host": V, "H": V, "context": V, "c": V, "config": V, "debug": B, "D": B,
    "log-level": V, "l": V, "tls": B, "tlscacert": V, "tlscert": V, "tlskey": V,
    "tlsverify": B,
}  # fmt: skip
_PODMAN_GLOBAL = {
    "cgroup-manager": V, "conmon": V, "config": V, "db-backend": V, "events-backend": V,
    "hooks-dir": V, "imagestore": V, "log-level": V, "module": V, "network-cmd-path": V,
    "network-config-dir": V, "root": V, "runroot": V, "runtime": V, "runtime-flag": V,
    "storage-driver": V, "storage-opt": V, "syslog": B, "tmpdir": V, "transient-store": B,
    "volumepath": V,
}  # fmt: skip
_PODMAN_REMOTE = {"connection": V, "c": V, "url": V, "identity": V, "remote": B, "r": B,
                  "ssh": V, "out": V, "noout": B}  # fmt: skip


# ---- parsing --------------------------------------------------------------------------------


def _unknown(program: str, flag: str) -> ImportInputError:
    names = [f"--{n}" for n in _LONG[program]] + [f"-{s}" for s in _SHORT[program]]
    hint = did_you_mean(flag, names)
    message = f"unknown flag for {program} run: {flag}"
    if hint:
        message += f" ({hint})"
    return ImportInputError(message)


def _parse_global(program: str, words: Sequence[str], d: Draft) -> int:
    """Consume global options before the subcommand; return the index of the subcommand."""
    i = 1
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        word = words[i]
        name, sep, value = word.lstrip("-").partition("=")
        known = _DOCKER_GLOBAL if program == "docker" else {**_PODMAN_GLOBAL, **_PODMAN_REMOTE}
        if name not in known:
            raise ImportInputError(f"unknown global {program} option {word}")
        consumed = 1
        if known[name] and not sep:
            if i + 1 >= len(words):
                raise ImportInputError(f"{program} option {word} needs a value")
            value = words[i + 1]
            consumed = 2
        shown = " ".join(words[i : i + consumed])
        if program == "docker":
            d.note(DROPPED, shown, "a docker client option; psquadlet runs podman on this host")
        elif name in _PODMAN_REMOTE:
            d.note(DROPPED, shown, "a remote podman option; the unit runs podman on this host")
        else:
            long = f"--{name}" if len(name) > 1 else f"-{name}"
            d.append("global_args", f"{long}={value}" if known[name] else long)
        i += consumed
    return i


_PREFIXES = {"sudo", "command", "exec"}


def parse(
    words: Sequence[str], environ: Mapping[str, str] | None = None, cwd: str | None = None
) -> Draft:
    """A ``docker run`` (or ``podman run``) argv -> Draft; raises ImportInputError."""
    words = list(words)
    while words and words[0] in _PREFIXES:
        words.pop(0)
    if not words:
        raise ImportInputError("no command line given: expected 'docker run ... IMAGE'")
    program = os.path.basename(words[0])
    if program not in ("docker", "podman"):
        raise ImportInputError(
            f"expected a docker run or podman run command line, not one starting with {words[0]!r}"
        )
    ctx = RunContext(program, os.environ if environ is None else environ, cwd or os.getcwd(), [])
    d = Draft()
    i = _parse_global(program, words, d)
    sub = words[i : i + 2]
    if sub[:1] in (["run"], ["create"]):
        i += 1
    elif sub in (["container", "run"], ["container", "create"]):
        i += 2
    else:
        raise ImportInputError(
            f"expected '{program} run', not '{' '.join([program, *sub])}'"
            if sub
            else f"expected '{program} run': no subcommand given"
        )
    i = _parse_flags(words, i, ctx, d)
    if i >= len(words):
        raise ImportInputError(f"{program} run needs an image: none was given")
    image = words[i]
    try:
        d.set("image", str(imageref.normalize(image)))
    except imageref.ImageRefError as exc:
        raise ImportInputError(str(exc)) from None
    if i + 1 < len(words):
        d.set("command", list(words[i + 1 :]))
    _finish_health(d, ctx)
    if not d.name:
        d.name = default_name(str(d.settings["image"]))
    return d


def _parse_flags(words: Sequence[str], i: int, ctx: RunContext, d: Draft) -> int:
    """Apply flags from words[i:]; return the index of the image."""
    program = ctx.program
    while i < len(words):
        word = words[i]
        if word == "--":
            return i + 1
        if not word.startswith("-") or word == "-":
            return i
        if word.startswith("--"):
            name, sep, value = word[2:].partition("=")
            spec = _LONG[program].get(name)
            if spec is None:
                raise _unknown(program, f"--{name}")
            if spec.takes_value and not sep:
                if i + 1 >= len(words):
                    raise ImportInputError(f"flag needs a value: --{name}")
                value = words[i + 1]
                i += 1
            elif not spec.takes_value:
                value = "true" if not sep else ("true" if _truth(word, value) else "false")
            spec.apply(d, ctx, f"--{name}", value)
            i += 1
            continue
        # One or more short flags: -itd, -p8080:80, -p=8080:80, -t=false.
        chars = word[1:]
        j = 0
        consumed_next = False
        while j < len(chars):
            spec = _SHORT[program].get(chars[j])
            if spec is None:
                raise _unknown(program, f"-{chars[j]}")
            rest = chars[j + 1 :]
            if spec.takes_value:
                if rest.startswith("="):
                    value = rest[1:]
                elif rest:
                    value = rest
                else:
                    if i + 1 >= len(words):
                        raise ImportInputError(f"flag needs a value: -{chars[j]}")
                    value = words[i + 1]
                    consumed_next = True
                spec.apply(d, ctx, f"-{chars[j]}", value)
                break
            if rest.startswith("="):
                spec.apply(d, ctx, f"-{chars[j]}", "true" if _truth(word, rest[1:]) else "false")
                break
            spec.apply(d, ctx, f"-{chars[j]}", "true")
            j += 1
        i += 2 if consumed_next else 1
    return i


_HEALTH_KEYS = {
    "health-cmd": "cmd",
    "health-interval": "interval",
    "health-timeout": "timeout",
    "health-retries": "retries",
    "health-start-period": "start_period",
    "health-on-failure": "on_failure",
}


def _finish_health(d: Draft, ctx: RunContext) -> None:
    """Health flags map to [health] only with a command; alone, they tune the image's check."""
    if not ctx.health:
        return
    has_cmd = any(name == "health-cmd" for name, _ in ctx.health)
    for name, value in ctx.health:
        if name == "health-start-interval":
            d.note(
                DROPPED, f"--{name} {value}", "podman has no check interval for the start period"
            )
            continue
        if not has_cmd:
            d.raw(f"--{name}={value}")
            continue
        health = d.section("health")
        target = _HEALTH_KEYS[name]
        converted: TomlValue
        if target == "retries":
            converted = durations.whole_number(value, f"--{name}")
        elif target in ("interval", "timeout", "start_period"):
            converted, exact = durations.from_go(value, f"--{name}")
            if not exact:
                d.note(
                    APPROXIMATED,
                    f"--{name} {value}",
                    f"rounded up to {converted}: the configuration counts whole seconds",
                )
        else:
            converted = value
        health[target] = converted
    if has_cmd and d.section("health").get("cmd") == "":
        d.sections.pop("health")


def default_name(image: str) -> str:
    """A unit name from the image when the line has no --name: ``docker.io/library/nginx``
    -> ``nginx``."""
    ref = imageref.normalize(image)
    base = ref.repository.rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]", "-", base) or "container"
