"""An installed systemd unit whose ``ExecStart=`` runs a container -> a container draft.

``unitreader`` reads the file as systemd would; the ``podman run`` / ``docker run`` line goes
through the same ``dockerrun`` parser as a pasted line (with the unit's environment, so
``-e NAME`` copies what the unit would have given podman); the unit's own settings that have a
configuration key become that key, those Quadlet writes itself are dropped with the reason,
and any other goes to ``extra`` as it was written.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from psquadlet.importer import dockerrun, inputfile, unitreader
from psquadlet.importer.draft import APPROXIMATED, DROPPED, Draft, ImportInputError
from psquadlet.importer.unitreader import Entry, UnitText
from psquadlet.tomlwriter import TomlValue

_UNIT_LISTS = {"After": "after", "Wants": "wants", "Requires": "requires", "Before": "before"}
_SERVICE_SPANS = {
    "RestartSec": "restart_sec",
    "TimeoutStartSec": "timeout_start",
    "TimeoutStopSec": "timeout_stop",
}
_RESTART = ("no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always")
# [Service] keys Quadlet's unit sets itself (it runs podman with --sdnotify, --cidfile, --rm).
_QUADLET_OWNS = {
    "Type": "Quadlet's unit is Type=notify: podman tells systemd when the container is up",
    "NotifyAccess": "Quadlet sets it for its Type=notify",
    "KillMode": "Quadlet sets it: podman stops the container",
    "Delegate": "Quadlet sets it for the container's cgroup",
    "PIDFile": "Quadlet tracks the container itself",
    "ExecStartPre": "Quadlet's unit removes a left-over container itself (podman run --replace)",
    "ExecStop": "Quadlet's unit stops the container itself (podman rm --force --time)",
    "ExecStopPost": "Quadlet's unit removes the container itself (podman rm --force)",
    "ExecReload": "a container unit has no reload",
    "Environment": "read for the ExecStart= line; the container gets its variables from "
    "its own -e/--env-file flags",
    "EnvironmentFile": "read for the ExecStart= line; the container gets its variables from "
    "its own -e/--env-file flags",
}
_PROGRAMS = ("podman", "docker")


def _read_env_files(unit: UnitText, entries: list[Entry]) -> dict[str, str]:
    """Each ``EnvironmentFile=`` (``-``: optional) in order; later values win."""
    env: dict[str, str] = {}
    specs = unitreader.specifiers(unit.unit_name)
    for entry in entries:
        optional = entry.value.startswith("-")
        path, _ = unitreader.resolve_specifiers(
            entry.value[1:] if optional else entry.value, specs, unit.where(entry)
        )
        if not os.path.isabs(path):
            raise ImportInputError(f"{unit.where(entry)}: not an absolute path: {path!r}")
        text = inputfile.read_text(path, missing_ok=optional)
        if text is not None:
            env.update(unitreader.parse_environment_file(text))
    return env


def environment(unit: UnitText) -> dict[str, str]:
    """What systemd gives ExecStart=: Environment= then EnvironmentFile= (which wins)."""
    env: dict[str, str] = {}
    for entry in unit.values("Service", "Environment"):
        env.update(unitreader.parse_environment(entry.value, unit.where(entry)))
    env.update(_read_env_files(unit, unit.values("Service", "EnvironmentFile")))
    return env


def container_line(
    unit: UnitText, env: dict[str, str]
) -> tuple[Entry, list[str], list[tuple[str, str]]]:
    """The ExecStart= entry, its argv and the notes on how it was read; refuses anything but
    one ``podman run`` / ``docker run``."""
    starts = unit.values("Service", "ExecStart")
    if not starts:
        raise ImportInputError(f"{unit.path}: no ExecStart= in [Service]: nothing runs a container")
    entry = starts[-1]
    where = unit.where(entry)
    if len(starts) > 1:
        raise ImportInputError(f"{where}: several ExecStart= lines: give a unit with one")
    commands, host = unitreader.split_exec(
        entry.value, where, env, unitreader.specifiers(unit.unit_name)
    )
    if len(commands) != 1:
        raise ImportInputError(f"{where}: expected one podman run or docker run command")
    argv = list(commands[0].argv)
    program = os.path.basename(argv[0]) if argv else ""
    rest = [w for w in argv[1:] if not w.startswith("-")][:1]
    if program not in _PROGRAMS or rest[:1] not in (["run"], ["create"], ["container"]):
        shown = " ".join(argv[:3])[:80]
        raise ImportInputError(
            f"{where}: not a container run: expected '/usr/bin/podman run ...' or "
            f"'docker run ...', not {shown!r}"
        )
    notes = [
        (f"{where}: ${name}", "substituted from the unit's Environment=/EnvironmentFile=")
        for name in dict.fromkeys(commands[0].substituted)
    ]
    notes += [
        (f"{where}: %{letter}", f"this host's {unitreader.HOST_SPECIFIERS[letter]}, written out")
        for letter in sorted(host)
    ]
    return entry, argv, notes


def _span(d: Draft, unit: UnitText, entry: Entry, section: str, key: str) -> None:
    seconds = unitreader.timespan_seconds(entry.value)
    if seconds is None:
        d.note(DROPPED, unit.where(entry), f"{entry.value!r} has no configuration value")
        return
    d.section(section)[key] = seconds


def _unit_section(d: Draft, unit: UnitText, entry: Entry) -> None:
    key = entry.key
    if key == "Description":  # psquadlet writes these escaped: specifiers are resolved here
        d.section("unit")["description"] = _resolved(unit, entry, entry.value)
    elif key in _UNIT_LISTS:
        values = [_resolved(unit, e, e.value).split() for e in unit.values("Unit", key)]
        d.section("unit")[_UNIT_LISTS[key]] = [w for v in values for w in v]
    elif key == "StartLimitIntervalSec":
        _span(d, unit, entry, "unit", "start_limit_interval")
    elif key == "StartLimitBurst" and entry.value.isdigit():
        d.section("unit")["start_limit_burst"] = int(entry.value)
    else:
        _extra(d, unit, "unit", entry)


def _resolved(unit: UnitText, entry: Entry, value: str) -> str:
    word, _ = unitreader.resolve_specifiers(
        value, unitreader.specifiers(unit.unit_name), unit.where(entry)
    )
    return word


def _extra(d: Draft, unit: UnitText, section: str, entry: Entry) -> None:
    extra = d.section(section).setdefault("extra", {})
    assert isinstance(extra, dict)
    values = [e.value for e in unit.values(entry.section, entry.key)] or [entry.value]
    extra[entry.key] = values if len(values) > 1 else values[0]


def _service_section(d: Draft, unit: UnitText, entry: Entry) -> None:
    key = entry.key
    if key == "ExecStart":
        return
    if key == "Restart":
        if entry.value not in _RESTART:
            raise ImportInputError(f"{unit.where(entry)}: unknown value {entry.value!r}")
        d.section("service")["restart"] = entry.value
    elif key in _SERVICE_SPANS:
        _span(d, unit, entry, "service", _SERVICE_SPANS[key])
    elif key in _QUADLET_OWNS:
        d.note(DROPPED, unit.where(entry), _QUADLET_OWNS[key])
    else:
        _extra(d, unit, "service", entry)


def _install_section(d: Draft, unit: UnitText, entry: Entry) -> None:
    if entry.key == "WantedBy":
        values = [e.value.split() for e in unit.values("Install", "WantedBy")]
        d.section("install")["wanted_by"] = [w for v in values for w in v]
    else:
        _extra(d, unit, "install", entry)


_SECTIONS: dict[str, Callable[[Draft, UnitText, Entry], None]] = {
    "Unit": _unit_section,
    "Service": _service_section,
    "Install": _install_section,
}


def parse(path: str) -> tuple[Draft, str, bool]:
    """The unit file at ``path`` -> (draft, program, whether it restarts the container)."""
    text = inputfile.read_text(path)
    assert text is not None
    unit = unitreader.parse_unit(text, path)
    if not unit.unit_name.endswith(".service"):
        raise ImportInputError(f"{path}: not a .service unit")
    env = environment(unit)
    entry, argv, notes = container_line(unit, env)
    try:
        d = dockerrun.parse(argv, env, "/")
    except ImportInputError as exc:
        raise ImportInputError(f"{unit.where(entry)}: {exc}") from None
    for subject, reason in notes:
        d.note(APPROXIMATED, subject, reason)
    seen: set[tuple[str, str]] = set()
    for e in unit.entries:
        if (e.section, e.key) in seen:
            continue
        seen.add((e.section, e.key))
        handler = _SECTIONS.get(e.section)
        if handler is None:
            d.note(DROPPED, unit.where(e), f"[{e.section}] is not a section of a service unit")
            continue
        handler(d, unit, e)
    stem = unit.unit_name[: -len(".service")]
    if d.name != stem:
        if d.name and "container_name" not in d.settings:
            d.set("container_name", d.name)
        d.name = stem
    restart: TomlValue | None = d.sections.get("service", {}).get("restart")
    return d, os.path.basename(argv[0]), restart is not None
