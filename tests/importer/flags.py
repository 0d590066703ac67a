"""An independent reading of podman/docker run argv, for comparing import's input with what
Podman's Quadlet generator finally runs.

Deliberately written apart from ``psquadlet.importer.dockerrun`` (a small table of its own, no
shared code), so that a mistake in the importer's table cannot hide itself in the comparison.
Both sides are reduced to a sorted list of (long flag, canonical value) pairs plus the global
options, image and command.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass

from psquadlet import imageref

# Flags that take no value (docker's and podman's), by long name.
BOOLEAN = {
    "detach", "interactive", "tty", "rm", "init", "privileged", "read-only", "publish-all",
    "no-healthcheck", "oom-kill-disable", "replace", "env-host", "no-hosts", "http-proxy",
    "read-only-tmpfs", "sig-proxy", "quiet", "disable-content-trust", "help", "tls-verify",
    "unsetenv-all", "passwd", "use-api-socket",
}  # fmt: skip
SHORT = {
    "d": "detach", "i": "interactive", "t": "tty", "P": "publish-all", "q": "quiet",
    "a": "attach", "c": "cpu-shares", "e": "env", "h": "hostname", "l": "label", "m": "memory",
    "p": "publish", "u": "user", "v": "volume", "w": "workdir",
}  # fmt: skip
ALIASES = {"net": "network", "dns-opt": "dns-option", "net-alias": "network-alias"}
GLOBAL_WITH_VALUE = {"runtime", "root", "runroot", "cgroup-manager", "log-level", "storage-driver"}

# What docker/podman do by themselves that a systemd unit does differently (never compared).
NOT_COMPARED = {"detach", "interactive", "rm", "attach", "detach-keys", "sig-proxy", "restart",
                "cidfile", "replace", "cgroups"}  # fmt: skip
# What Quadlet adds to every container.
QUADLET_OWN = {("sdnotify", "conmon")}
# What the perfSONAR preset adds on purpose (continuous health, issues 11 and 17), as podman
# run flags; its timeout (30s) and retries (3) are Podman's defaults, which compared() leaves
# out. No --health-on-failure and no --sdnotify=healthy: psquadlet heal acts on an unhealthy
# testpoint, within its budget.
PRESET_HEALTH = [
    '--health-cmd ["pscheduler", "troubleshoot", "--quick"]', "--health-interval 1m",
    "--health-start-period 5m",
]  # fmt: skip
HEALTH_DEFAULTS = {
    "health-interval": "30",
    "health-timeout": "30",
    "health-retries": "3",
    "health-start-period": "0",
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def _seconds(text: str) -> str:
    total = 0.0
    for number, unit in _DURATION.findall(text):
        total += float(number) * _UNIT[unit]
    return str(math.ceil(total))


def _cap(value: str) -> str:
    lowered = value.lower()
    return lowered[4:] if lowered.startswith("cap_") else lowered


def canonical_value(flag: str, value: str) -> str:
    if flag in ("cap-add", "cap-drop"):
        return _cap(value)
    if flag in ("health-interval", "health-timeout", "health-start-period"):
        return _seconds(value)
    if flag == "security-opt" and value.startswith("no-new-privileges"):
        return "no-new-privileges"
    if flag == "add-host":
        return value.replace("=", ":", 1) if ":" not in value else value
    return value


@dataclass
class Run:
    """A run command line reduced to what can be compared."""

    global_args: list[str]
    flags: list[tuple[str, str]]
    image: str
    command: list[str]


def read(argv: list[str]) -> Run:
    """docker/podman [global options] [container] run FLAGS IMAGE [COMMAND...]."""
    words = [w for w in argv if w != "sudo"]
    i = 1
    global_args: list[str] = []
    while words[i].startswith("-"):
        name, sep, value = words[i][2:].partition("=")
        if name in GLOBAL_WITH_VALUE and not sep:
            value = words[i + 1]
            i += 1
        global_args.append(f"--{name}={value}")
        i += 1
    if words[i] == "container":
        i += 1
    assert words[i] == "run", words
    i += 1
    flags: list[tuple[str, str]] = []
    while i < len(words) and words[i].startswith("-"):
        word = words[i]
        if word == "--":
            i += 1
            break
        if word.startswith("--"):
            name, sep, value = word[2:].partition("=")
            name = ALIASES.get(name, name)
            if name in BOOLEAN:
                value = value or "true"
            elif not sep:
                value = words[i + 1]
                i += 1
            flags.append((name, value))
            i += 1
            continue
        chars = word[1:]
        for j, char in enumerate(chars):
            name = SHORT[char]
            if name in BOOLEAN:
                flags.append((name, "true"))
                continue
            rest = chars[j + 1 :].removeprefix("=")
            if rest:
                flags.append((name, rest))
            else:
                flags.append((name, words[i + 1]))
                i += 1
            break
        i += 1
    image = words[i]
    return Run(global_args, flags, image, words[i + 1 :])


def compared(run: Run) -> list[tuple[str, str]]:
    """The flags that must agree, canonical and sorted; health defaults left out."""
    pairs = [(f, canonical_value(f, v)) for f, v in run.flags if f not in NOT_COMPARED]
    pairs = [p for p in pairs if p not in QUADLET_OWN]
    if any(f == "health-cmd" for f, _ in pairs):
        pairs = [p for p in pairs if HEALTH_DEFAULTS.get(p[0]) != p[1]]
    return sorted(pairs)


def input_words(text: str) -> list[str]:
    """A corpus command as a shell would split it: continuations joined, prompt removed."""
    text = text.replace("\\\n", " ").strip()
    text = re.sub(r"^[#$]\s+", "", text)
    return shlex.split(text)


def normalized_image(image: str) -> str:
    return str(imageref.normalize(image))
