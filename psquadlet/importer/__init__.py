"""``psquadlet import``: docker run lines and compose files -> a psquadlet configuration.

The pipeline is: read the input (``shellwords`` for a command line; for a compose file
``yaml12``, ``dotenv`` and ``interpolation``), map each flag or key onto the configuration's
own keys (``dockerrun`` with ``runflags`` / ``composeservice``, into a ``Draft``), say the
upstream perfSONAR commands with their preset (``perfsonar``), and write TOML
(``psquadlet.tomlwriter``). The text is then read back with the real configuration loader, so
that what import prints is always something ``psquadlet generate`` accepts.
"""

from __future__ import annotations

import os
import re
import shlex
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from psquadlet import fsutil, imageref
from psquadlet.errors import PsquadletError
from psquadlet.importer import compose, dockerrun, fromunit, perfsonar, shellwords
from psquadlet.importer import inspect as inspect_mod
from psquadlet.importer.draft import (
    APPROXIMATED,
    DROPPED,
    PRESET,
    RAW,
    Draft,
    ImportedContainer,
    ImportInputError,
    ImportResult,
    Note,
)
from psquadlet.importer.inputfile import read_stream
from psquadlet.importer.secretnames import looks_secret, secret_warnings
from psquadlet.tomlwriter import Table, TomlValue, TomlWriteError, document

__all__ = [
    "APPROXIMATED",
    "DROPPED",
    "PRESET",
    "RAW",
    "ImportInputError",
    "ImportResult",
    "Note",
    "from_command_line",
    "from_compose",
    "from_container",
    "from_unit",
    "looks_secret",
    "messages",
    "read_stream",
    "to_toml",
    "write",
]

_DOCKER_DEFAULT_CAPS = ("CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_NET_RAW")


def _check_name(name: str) -> None:
    from psquadlet.config import FieldError, check_name  # noqa: PLC0415 - keep import light

    try:
        check_name(name)
    except FieldError as exc:
        raise ImportInputError(f"--name: {exc.message}") from None


def _finish(d: Draft, name: str | None, docker_defaults: bool, restart_default: str) -> None:
    """What every import does last: the table name, the preset, the notes about defaults."""
    if name is not None:
        _check_name(name)
        if name != d.name:
            d.set("container_name", d.name)
            d.name = name
    if docker_defaults and not d.settings.get("privileged"):
        have = {perfsonar._cap(str(c)) for c in _as_list(d.settings.get("cap_add"))}
        dropped = {perfsonar._cap(str(c)) for c in _as_list(d.settings.get("cap_drop"))}
        is_perfsonar = perfsonar.variant_of(str(d.settings["image"])) is not None
        if is_perfsonar:
            have.add("CAP_NET_RAW")
        missing = (
            [c for c in _DOCKER_DEFAULT_CAPS if c not in have and c not in dropped]
            if "CAP_ALL" not in dropped
            else []
        )
        if missing:
            d.note(
                APPROXIMATED,
                "(default capabilities)",
                f"docker grants {', '.join(missing)} by default and podman does not: add them "
                "to cap_add if the container needs them",
            )
    if d.settings.get("network") in ("host", "none") and d.settings.get("ports"):
        for port in _as_list(d.settings.pop("ports")):
            d.note(
                DROPPED,
                f"port {port}",
                f"docker discards published ports with network {d.settings['network']}: the "
                "container uses the host's (or no) network",
            )
    image = imageref.normalize(str(d.settings["image"]))
    if image.digest and not image.tag:
        d.section("update")["policy"] = "off"
        d.note(
            APPROXIMATED,
            "(image digest)",
            "the image is pinned by digest, so there is nothing to upgrade: the watcher leaves "
            'it alone (update.policy = "off")',
        )
    used_preset = perfsonar.apply_preset(d)
    if not used_preset and "restart" not in d.sections.get("service", {}):
        d.note(
            APPROXIMATED,
            "(restart policy)",
            f"the {restart_default} does not restart the container; the unit restarts it on "
            'failure (psquadlet\'s default): set [service] restart = "no" for the old behaviour',
        )


def _as_list(value: TomlValue | None) -> list[TomlValue]:
    return list(value) if isinstance(value, list) else []


def from_command_line(
    args: Sequence[str],
    name: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> ImportResult:
    """A ``docker run`` / ``podman run`` line: already split words, or ONE string to split."""
    environ = os.environ if environ is None else environ
    notes: list[Note] = []
    if len(args) == 1:
        try:
            words, expansions = shellwords.split(args[0], environ)
        except shellwords.ShellSyntaxError as exc:
            raise ImportInputError(f"cannot read the command line: {exc}") from None
        for expansion in expansions:
            if expansion.value is None:
                notes.append(
                    Note(
                        APPROXIMATED,
                        f"${expansion.name}",
                        "not set here: expanded to an empty string, as a shell would",
                    )
                )
            else:
                notes.append(
                    Note(
                        APPROXIMATED,
                        f"${expansion.name}",
                        "expanded from the environment of the import, as a shell would",
                    )
                )
    else:
        words = list(args)
    d = dockerrun.parse(words, environ, cwd)
    program = os.path.basename(next(w for w in words if w not in ("sudo", "command", "exec")))
    _finish(d, name, docker_defaults=program == "docker", restart_default=f"{program} run line")
    source = shlex.join(words)
    return ImportResult(source=source, containers=(d.freeze(),), notes=tuple(notes))


def from_compose(
    path: str,
    service: str | None = None,
    name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ImportResult:
    """Services of a compose file (all, or the one named)."""
    if name is not None and service is None:
        raise ImportInputError("--name needs --service: a compose file may hold several services")
    loaded = compose.load(path, service, environ)
    containers: list[ImportedContainer] = []
    seen: dict[str, str] = {}
    for d in loaded.drafts:
        _finish(d, name, docker_defaults=True, restart_default="compose service")
        if d.name in seen:
            raise ImportInputError(
                f"{path}: two services would both be the unit {d.name!r}: give them different "
                "container_name values, or import them one at a time with --service and --name"
            )
        seen[d.name] = d.name
        containers.append(d.freeze())
    return ImportResult(
        source=os.path.abspath(path) + (f" (service {service})" if service else ""),
        containers=tuple(containers),
        volumes=tuple(loaded.volumes),
        notes=tuple(loaded.notes),
    )


def from_unit(path: str, name: str | None = None) -> ImportResult:
    """An installed systemd unit whose ExecStart= runs ``podman run`` or ``docker run``."""
    d, program, _ = fromunit.parse(path)
    _finish(d, name, docker_defaults=program == "docker", restart_default="unit")
    _upstream_note(d)
    return ImportResult(source=os.path.abspath(path), containers=(d.freeze(),))


def from_container(
    container: str, name: str | None = None, run: inspect_mod.Runner | None = None
) -> ImportResult:
    """An existing container, from ``podman container inspect``: its recorded create
    command when it has one, else its settings mapped back onto flags."""
    from psquadlet.host import run_command  # noqa: PLC0415 - keep import light

    where = f"podman container inspect {container}"
    data = inspect_mod.inspect_container(container, run or run_command)
    argv = inspect_mod.create_command(data, where)
    lost: list[tuple[str, str]] = []
    how = "its create command (Config.CreateCommand)"
    if argv is None:
        argv, lost = inspect_mod.run_line(data, where)
        how = "its settings (no create command recorded)"
    try:
        d = dockerrun.parse(argv, {}, "/")
    except ImportInputError as exc:
        raise ImportInputError(f"{where}: {exc}") from None
    for subject, reason in lost:
        d.note(DROPPED, subject, reason)
    if name is None and d.name != container:
        name = container
    _finish(d, name, docker_defaults=False, restart_default="container")
    _upstream_note(d)
    return ImportResult(source=f"container {container}, {how}", containers=(d.freeze(),))


def _upstream_note(d: Draft) -> None:
    """A testpoint image that is not upstream's (OSG's registry): say which one it could
    move to; the import keeps the image it came with."""
    image = str(d.settings.get("image", ""))
    if d.settings.get("preset") or "perfsonar-testpoint" not in image.rsplit("/", 1)[-1]:
        return
    tag = imageref.normalize(image).tag or ""
    same = re.fullmatch(r"latest|systemd|v\d+\.\d+\.\d+(-systemd)?", tag)
    upstream = f"ghcr.io/perfsonar/testpoint:{tag if same else 'systemd'}"
    why = "" if same else f" (upstream has no tag {tag!r}; systemd is its systemd variant)"
    d.note(
        APPROXIMATED,
        "(image)",
        f"{image} is kept as it is; the upstream image is {upstream}{why}: "
        'preset = "perfsonar-testpoint" moves to it, and the watcher can then follow '
        "upstream's releases",
    )


def _note_lines(notes: Sequence[Note]) -> list[str]:
    lines: list[str] = []
    for note in notes:
        lines += textwrap.wrap(
            str(note),
            width=96,
            initial_indent="  ",
            subsequent_indent="      ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    return lines


def to_toml(result: ImportResult) -> str:
    """The configuration file text, with comments saying what was not carried over as is."""
    source = textwrap.wrap(
        f"Imported by 'psquadlet import' from: {result.source}",
        width=96,
        subsequent_indent="    ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    header = [
        *source,
        "Check it with 'psquadlet validate -c FILE', then run 'psquadlet generate -c FILE'.",
    ]
    if result.notes:
        header += ["", "Not carried over as written:", *_note_lines(result.notes)]
    tables: list[Table] = []
    for volume in result.volumes:
        tables.append(Table(("volumes", volume.name), volume.settings))
    for container in result.containers:
        comments: list[str] = []
        if container.notes:
            comments = ["Not carried over as written:", *_note_lines(container.notes)]
        tables.append(Table(("containers", container.name), container.settings, tuple(comments)))
        for section, entries in container.sections:
            tables.append(Table(("containers", container.name, section), entries))
    try:
        return document(tables, header)
    except TomlWriteError as exc:
        raise ImportInputError(f"cannot write the configuration: {exc}") from None


def validate(text: str) -> None:
    """Read the text back with the real loader: an import never prints what generate refuses.

    A value the configuration refuses (a port out of range, a bad variable name) is named by
    its key path; the line numbers of a file not yet written would only confuse.
    """
    from psquadlet.config import parse_config  # noqa: PLC0415 - keep import light
    from psquadlet.errors import ConfigError, ConfigErrors  # noqa: PLC0415

    try:
        parse_config(text, "<import>")
    except (ConfigError, ConfigErrors) as exc:
        problems = "; ".join(
            f"{e.key_path}: {e.message}" + (f" ({e.hint})" if e.hint else "") for e in exc.errors
        )
        raise ImportInputError(f"the input asks for what psquadlet refuses: {problems}") from None


def messages(result: ImportResult) -> list[str]:
    """What import says on stderr: each note not passed to podman as is, then each warning."""
    return [str(n) for n in result.all_notes if n.kind != RAW] + secret_warnings(result)


def write(path: Path, text: str) -> None:
    """Write the configuration atomically; an OSError (read-only folder, full disk) becomes a
    PsquadletError naming the file, and nothing is left half-written."""
    try:
        fsutil.atomic_write(path, text)
    except OSError as exc:
        raise PsquadletError(f"{path}: cannot write: {exc.strerror or exc}") from None
