"""What an import builds before it is written: a container's settings, and what was lost.

A ``Draft`` is filled in flag by flag (or compose key by compose key), always in terms of the
configuration file's own keys, so that writing it out is mechanical and the same code serves
docker run lines and compose files. Every flag that could not be carried over exactly leaves a
``Note`` saying why; the notes become comments in the output and lines on stderr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psquadlet import schema
from psquadlet.errors import UsageError
from psquadlet.tomlwriter import TomlValue


class ImportInputError(UsageError):
    """The input is not something import can read (exit code 2, nothing written).

    The message is one line: a control character (or lone surrogate) from the input, say in a
    service name, is shown escaped (``\\r``), so it can neither break nor forge the line.
    """

    def __init__(self, message: str) -> None:
        super().__init__("".join(c if c.isprintable() else ascii(c)[1:-1] for c in message))


DROPPED = "dropped"
APPROXIMATED = "approximated"
RAW = "passed to podman as is"
PRESET = "added by the preset"


@dataclass(frozen=True)
class Note:
    """One flag or key that did not map one-to-one onto a configuration setting."""

    kind: str
    """DROPPED, APPROXIMATED, RAW or PRESET."""
    subject: str
    """The flag or key as the operator wrote it, e.g. ``-d`` or ``services.web.build``."""
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.reason}"


# The container table's keys in the order the schema documents them, for a readable file.
CONTAINER_KEYS = schema.CONTAINER_KEYS
SECTION_KEYS = {
    "health": ("cmd", "interval", "timeout", "retries", "start_period", "on_failure"),
    "unit": (
        "description",
        "after",
        "wants",
        "requires",
        "before",
        "start_limit_interval",
        "start_limit_burst",
        "extra",
    ),
    "service": ("restart", "restart_sec", "timeout_start", "timeout_stop", "extra"),
    "install": ("wanted_by", "extra"),
    "update": ("policy",),
}


@dataclass
class Draft:
    """A container being imported (mutable while it is built; see ``ImportedContainer``)."""

    name: str = ""
    settings: dict[str, TomlValue] = field(default_factory=dict)
    sections: dict[str, dict[str, TomlValue]] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)

    def set(self, name: str, value: TomlValue) -> None:
        self.settings[name] = value

    def append(self, name: str, *values: str) -> None:
        current = self.settings.setdefault(name, [])
        assert isinstance(current, list)
        current.extend(values)

    def put(self, name: str, map_key: str, value: str) -> None:
        current = self.settings.setdefault(name, {})
        assert isinstance(current, dict)
        current[map_key] = value

    def section(self, section: str) -> dict[str, TomlValue]:
        return self.sections.setdefault(section, {})

    def raw(self, *words: str) -> None:
        self.append("podman_args", *words)

    def note(self, kind: str, subject: str, reason: str) -> None:
        self.notes.append(Note(kind, subject, reason))

    def freeze(self) -> ImportedContainer:
        return ImportedContainer(
            name=self.name,
            settings=_ordered(self.settings, CONTAINER_KEYS),
            sections=tuple(
                (section, _ordered(self.sections[section], SECTION_KEYS[section]))
                for section in SECTION_KEYS
                if self.sections.get(section)
            ),
            notes=tuple(self.notes),
        )


def _ordered(
    values: dict[str, TomlValue], order: tuple[str, ...]
) -> tuple[tuple[str, TomlValue], ...]:
    rank = {name: i for i, name in enumerate(order)}
    return tuple(sorted(values.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


@dataclass(frozen=True)
class ImportedContainer:
    """One ``[containers.NAME]`` table to write, with its sub-tables and notes."""

    name: str
    settings: tuple[tuple[str, TomlValue], ...]
    sections: tuple[tuple[str, tuple[tuple[str, TomlValue], ...]], ...]
    notes: tuple[Note, ...]

    def get(self, name: str) -> TomlValue | None:
        for key, value in self.settings:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class ImportedVolume:
    """One ``[volumes.NAME]`` table (compose's top-level volumes)."""

    name: str
    settings: tuple[tuple[str, TomlValue], ...]


@dataclass(frozen=True)
class ImportResult:
    """Everything one import produced; ``source`` says where it came from, for the header."""

    source: str
    containers: tuple[ImportedContainer, ...]
    volumes: tuple[ImportedVolume, ...] = ()
    notes: tuple[Note, ...] = ()
    """Notes that belong to no single container (top-level compose keys)."""

    @property
    def all_notes(self) -> tuple[Note, ...]:
        return self.notes + tuple(n for c in self.containers for n in c.notes)
