"""Errors that reach the operator.

Every error psquadlet raises on purpose derives from ``PsquadletError`` so that the CLI can
print one line per problem and exit with a code that scripts can rely on: 2 for bad usage or
a bad configuration (nothing was changed), 1 for a runtime failure.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class PsquadletError(Exception):
    """Base class: the CLI prints ``psquadlet: error: <str(exc)>`` and exits with exit_code."""

    exit_code: int = 1


class UsageError(PsquadletError):
    """The command line asks for something impossible (exit code 2, nothing changed)."""

    exit_code = 2


class RefusedError(PsquadletError):
    """psquadlet would have to destroy something it does not own (e.g. a hand-written unit)."""

    exit_code = 1


class UnsafeFolderError(PsquadletError):
    """A folder psquadlet would write in (as root) can be written by someone else."""

    exit_code = 1


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The hint for a misspelt name, or None when nothing is close enough to help."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    if not matches:
        return None
    return f"did you mean {matches[0]!r}?"


class ConfigError(PsquadletError):
    """One problem in a configuration, located as precisely as the input allows.

    ``str()`` reads ``FILE:LINE: key.path: message (hint)``; the line and key path are left out
    when unknown, so that the message is always something an editor can jump to.
    """

    exit_code = 2

    def __init__(
        self,
        file: str,
        line: int | None,
        key_path: str,
        message: str,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key_path = key_path
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """Same interface as ConfigErrors, so callers can always iterate."""
        return (self,)

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: "
        if self.key_path:
            text += f"{self.key_path}: "
        text += self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __repr__(self) -> str:
        return f"ConfigError({self.__str__()!r})"


class PodmanVersionError(ConfigError):
    """The target Podman cannot read a key, or one value of a key, that the configuration needs.

    Typed so that callers never grep messages: ``feature`` names what is missing (a Quadlet key
    such as ``HealthOnFailure=``, a key=value such as ``Notify=healthy``, or a ``podman run``
    flag such as ``--sdnotify=healthy``), ``needs`` the first Podman version that has it and
    ``target`` the version units are written for. ``str()`` reads like any ConfigError.
    """

    def __init__(
        self,
        file: str,
        line: int | None,
        key_path: str,
        *,
        feature: str,
        needs: tuple[int, ...],
        target: tuple[int, ...],
        message: str | None = None,
    ) -> None:
        self.feature = feature
        self.needs = tuple(needs)
        self.target = tuple(target)
        if message is None:
            message = (
                f"{feature} needs Podman {_version(self.needs)} or newer "
                f"(target is {_version(self.target)})"
            )
        super().__init__(file, line, key_path, message)


def _version(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


class ConfigErrors(PsquadletError):
    """Several configuration problems found in one pass: an operator fixes them all at once."""

    exit_code = 2

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors: tuple[ConfigError, ...] = tuple(errors)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def raise_collected(errors: Sequence[ConfigError]) -> None:
    """Raise the single error itself, or all of them together; do nothing when there are none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)
