"""Compose files -> container drafts, one per service: the file as a whole.

Compose does two things before it looks at a service: it interpolates ``${VAR}`` (from the
environment, then from a ``.env`` file beside the compose file) in every value, and it reads
relative paths against the compose file's folder. Both happen here too, so that the imported
configuration says what ``docker compose up`` would have run. The jobs are split: ``yaml12``
reads the file (YAML 1.2, bounded), ``dotenv`` the ``.env`` file, ``interpolation`` the
``${VAR}`` forms, ``composeservice`` maps one service's keys (``composevolumes`` its volumes
and the named volumes, ``composevalues`` the shapes of values); this module reads the top
level (which services, the variables, file-level notes). Keys that have no meaning under systemd, or
that psquadlet cannot express, are reported (never fatal), each with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psquadlet.importer import yaml12
from psquadlet.importer.composeservice import Service
from psquadlet.importer.composevalues import scalar
from psquadlet.importer.composevolumes import ComposeFile, volume_table
from psquadlet.importer.dotenv import read_dotenv
from psquadlet.importer.draft import (
    APPROXIMATED,
    DROPPED,
    Draft,
    ImportedVolume,
    ImportInputError,
    Note,
)
from psquadlet.importer.interpolation import Interpolator


@dataclass
class ComposeImport:
    """The drafts of the selected services, the named volumes they use, and file-level notes."""

    drafts: list[Draft]
    volumes: list[ImportedVolume]
    notes: list[Note]


_TOP_LEVEL_IGNORED = {"version": "", "name": ""}
_TOP_LEVEL_DROPPED = {
    "networks": "psquadlet does not create networks: create them with podman network create",
    "secrets": "pass secrets with podman secret create and podman_args --secret",
    "configs": "compose configs have no podman equivalent; bind-mount the file instead",
    "include": "included compose files are not read; import them one by one",
}


def load(
    path: str, service: str | None = None, environ: Mapping[str, str] | None = None
) -> ComposeImport:
    """Read a compose file; raises ImportInputError for anything unreadable."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    document = yaml12.load(path)
    environ = os.environ if environ is None else environ
    variables = {**read_dotenv(os.path.join(folder, ".env")), **environ}
    notes: list[Note] = []
    if not isinstance(document, dict):
        raise ImportInputError(f"{path}: not a compose file: the top level must be a mapping")
    services = document.get("services")
    if services is None:
        if (
            document
            and "version" not in document
            and all(
                isinstance(v, dict) and ("image" in v or "build" in v) for v in document.values()
            )
        ):
            # Compose file format 1: the services are the top level.
            services, document = document, {"services": document}
            notes.append(
                Note(
                    APPROXIMATED,
                    "(file format)",
                    "read as compose file format 1: every top-level key a service",
                )
            )
        else:
            raise ImportInputError(f"{path}: not a compose file: it has no 'services'")
    if not isinstance(services, dict) or not services:
        raise ImportInputError(f"{path}: 'services' must be a non-empty mapping")
    for key in document:
        if key == "services" or key in _TOP_LEVEL_IGNORED or str(key).startswith("x-"):
            continue
        if key in _TOP_LEVEL_DROPPED:
            if key == "networks":
                continue  # reported with the service that uses a network
            notes.append(Note(DROPPED, str(key), _TOP_LEVEL_DROPPED[key]))
        elif key != "volumes":
            notes.append(Note(DROPPED, str(key), "unknown top-level compose key"))
    if service is not None and service not in services:
        names = ", ".join(sorted(map(str, services)))
        raise ImportInputError(f"{path}: no service {service!r} (the file has: {names})")
    unset: list[str] = []
    interpolate = Interpolator(variables, unset)
    selected = [service] if service is not None else list(services)
    top_volumes = interpolate.tree(document.get("volumes") or {}, "volumes")
    if not isinstance(top_volumes, dict):
        raise ImportInputError(f"{path}: 'volumes' must be a mapping")
    project = str(document.get("name") or os.path.basename(folder) or "project")
    # Names are interpolated like every value (a separate list: unselected services stay quiet).
    quiet = Interpolator(variables, [])
    table_names = {
        str(name): quiet(_table_name(str(name), body), f"services.{name}.container_name")
        for name, body in services.items()
    }
    volume_names = {
        str(key): quiet(scalar(spec["name"], f"volumes.{key}.name"), f"volumes.{key}.name")
        if isinstance(spec, dict) and spec.get("name")
        else str(key)
        for key, spec in top_volumes.items()
    }
    drafts = []
    file = ComposeFile(folder, variables, table_names, volume_names)
    for name in selected:
        body = services[name]
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ImportInputError(f"{path}: services.{name} must be a mapping")
        body = interpolate.tree(body, f"services.{name}")
        drafts.append(Service(str(name), file).convert(body))
    for name in sorted(set(unset)):
        notes.append(
            Note(
                APPROXIMATED,
                f"${{{name}}}",
                "the variable is not set (nor in .env): compose uses an empty string",
            )
        )
    volumes = []
    for volume, where in file.used_volumes.items():
        if volume not in top_volumes:
            raise ImportInputError(
                f"{path}: {where} uses the named volume {volume!r}, which the top-level "
                "'volumes' does not declare"
            )
        table = volume_table(volume, top_volumes[volume], project, notes)
        if table is not None:
            volumes.append(table)
    return ComposeImport(drafts, volumes, notes)


def _table_name(service: str, body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("container_name"), str):
        return str(body["container_name"])
    return service
