"""``docker run`` / ``podman run`` command lines -> a container draft.

The flag table (``runflags``) is the whole of what import knows about ``docker run``. Parsing
follows Docker's CLI library (pflag) exactly, so that a line that works with ``docker run`` is
read the same way here: long flags as ``--flag=value`` or ``--flag value``, short flags
combined (``-itd``) or with their value attached (``-p8080:80``, ``-p=8080:80``), booleans as
``--flag=false``, repeated flags, ``--`` ending the flags, and flags stopping at the image
(what follows is the command).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from psquadlet import imageref
from psquadlet.errors import did_you_mean
from psquadlet.importer import durations
from psquadlet.importer.draft import APPROXIMATED, DROPPED, Draft, ImportInputError
from psquadlet.importer.runflags import (
    LONG_FLAGS,
    SHORT_FLAGS,
    B,
    RunContext,
    V,
    truth,
)
from psquadlet.tomlwriter import TomlValue

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
    names = [f"--{n}" for n in LONG_FLAGS[program]] + [f"-{s}" for s in SHORT_FLAGS[program]]
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
            spec = LONG_FLAGS[program].get(name)
            if spec is None:
                raise _unknown(program, f"--{name}")
            if spec.takes_value and not sep:
                if i + 1 >= len(words):
                    raise ImportInputError(f"flag needs a value: --{name}")
                value = words[i + 1]
                i += 1
            elif not spec.takes_value:
                value = "true" if not sep else ("true" if truth(word, value) else "false")
            spec.apply(d, ctx, f"--{name}", value)
            i += 1
            continue
        # One or more short flags: -itd, -p8080:80, -p=8080:80, -t=false.
        chars = word[1:]
        j = 0
        consumed_next = False
        while j < len(chars):
            spec = SHORT_FLAGS[program].get(chars[j])
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
                spec.apply(d, ctx, f"-{chars[j]}", "true" if truth(word, rest[1:]) else "false")
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
