"""The one interface through which a table inside ``[containers.NAME]`` joins psquadlet.

An extension (today: ``perfsonar``) owns one sub-table of a container. It

* parses it, reporting problems through the ``ErrorSink`` that config hands it (config places
  them: file, line, key path), into a typed value stored in the ``ContainerSpec`` field named
  like the table;
* contributes bind mounts to the container and the host files those mounts read, both
  relative to the host folder of the run (``/etc/psquadlet``, ``~/.config/psquadlet`` with
  ``--user``, ``OUTPUT/psquadlet`` with ``-o``), so that ``generate`` puts every file of a run
  in one plan under one root;
* offers doctor checks from a module of its own (``psquadlet.perfsonar.checks``), so that this
  interface stays free of the host-inspection code.

The registry of extensions is ``config.CONTAINER_EXTENSIONS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar


class ErrorSink(Protocol):
    """Where a parser reports a bad value; ``path`` is the full key path from the file's root."""

    def error(self, path: Sequence[str | int], message: str, hint: str | None = None) -> None: ...


@dataclass(frozen=True)
class HostFile:
    """A file written on the host and mounted read-only into the container."""

    path: Path
    """Where it is written (inside the run's host folder)."""
    container_path: str
    """What it replaces inside the container."""
    content: str


S = TypeVar("S")


class ContainerExtension(Protocol[S]):
    """One ``[containers.NAME.<key>]`` table; ``S`` is the typed value it parses into."""

    @property
    def key(self) -> str:
        """The table's key, and the name of the ``ContainerSpec`` field holding ``S``."""
        ...

    def parse(self, table: object, errors: ErrorSink, path: tuple[str | int, ...]) -> S:
        """The typed value; problems go to ``errors`` (then the value returned is discarded)."""
        ...

    def mounts(self, container: str, spec: S, host_dir: Path) -> tuple[str, ...]:
        """``volumes`` entries (SRC:DST:OPTS) to add to the container."""
        ...

    def host_files(
        self, container: str, spec: S, host_dir: Path, header: str
    ) -> tuple[HostFile, ...]:
        """The files those mounts read; ``header`` is the generated-file marker line."""
        ...

    def host_folder(self, container: str, host_dir: Path) -> Path:
        """The folder the extension owns for ``container`` (stale files there are removed)."""
        ...
