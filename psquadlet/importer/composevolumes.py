"""The ``volumes`` key of a compose service (short and long syntax), and the top-level named
volumes it refers to, as ``[volumes.NAME]`` tables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psquadlet.importer.composevalues import mapping, scalar, string_map
from psquadlet.importer.draft import (
    APPROXIMATED,
    DROPPED,
    RAW,
    Draft,
    ImportedVolume,
    ImportInputError,
    Note,
)
from psquadlet.tomlwriter import TomlValue


@dataclass
class ComposeFile:
    """What the services of one compose file share."""

    folder: str
    variables: Mapping[str, str]
    table_names: Mapping[str, str]
    """Service -> its table (unit) name."""
    volume_names: Mapping[str, str]
    """Top-level volume key -> the volume's name."""
    used_volumes: dict[str, str] = field(default_factory=dict)
    """Named volumes the services use -> where the first use is (for the error if undeclared)."""


class ServiceVolumes:
    """The volume handlers of ``composeservice.Service`` (a base class of it)."""

    service: str
    file: ComposeFile
    draft: Draft

    def where(self, key: str) -> str:
        return f"services.{self.service}.{key}"

    def _source(self, source: str) -> str:
        if source.startswith(("~", ".")) or (not source.startswith("/") and "/" in source):
            source = os.path.normpath(os.path.join(self.file.folder, os.path.expanduser(source)))
        if source.startswith("/") and not os.path.exists(source):
            self.draft.note(
                APPROXIMATED,
                f"{self.where('volumes')} {source}",
                "the folder does not exist: compose would create it, podman refuses to start: "
                "create it before starting the unit",
            )
        return source

    def volumes(self, value: Any) -> None:
        d = self.draft
        for item in value if isinstance(value, list) else []:
            if isinstance(item, dict):
                self._long_volume(item)
                continue
            parts = scalar(item, self.where("volumes")).split(":")
            if len(parts) == 1:
                d.raw(f"--volume={parts[0]}")
                d.note(
                    RAW,
                    f"{self.where('volumes')} {item}",
                    "an anonymous volume has no configuration key",
                )
                continue
            source = parts[0]
            if not source.startswith(("/", ".", "~")):
                self.file.used_volumes.setdefault(source, self.where("volumes"))
                source = self.file.volume_names.get(source, source)
            else:
                source = self._source(source)
            d.append("volumes", ":".join([source, *parts[1:]]))

    def _long_volume(self, item: dict[str, Any]) -> None:
        d = self.draft
        kind = scalar(item.get("type", "volume"), self.where("volumes.type"))
        target = scalar(item.get("target"), self.where("volumes.target"))
        if not target:
            raise ImportInputError(f"{self.where('volumes')}: a volume needs a target")
        if kind == "tmpfs":
            sizes: list[str] = []
            tmpfs = mapping(item.get("tmpfs"), self.where("volumes.tmpfs"))
            if "size" in tmpfs:
                sizes.append(f"size={scalar(tmpfs['size'], self.where('volumes.tmpfs.size'))}")
            if "mode" in tmpfs:
                mode = tmpfs["mode"]
                if isinstance(mode, int) and not isinstance(mode, bool):
                    mode = f"{mode:o}"
                else:
                    mode = scalar(mode, self.where("volumes.tmpfs.mode"))
                    if mode.lower().startswith("0o"):
                        mode = mode[2:]  # YAML 1.2's octal, which PyYAML reads as text
                sizes.append(f"mode={mode}")
            d.append("tmpfs", f"{target}:{','.join(sizes)}" if sizes else target)
            return
        if kind not in ("bind", "volume"):
            d.note(DROPPED, f"{self.where('volumes')} {target}", f"volume type {kind!r}")
            return
        source = scalar(item.get("source"), self.where("volumes.source"))
        options: list[str] = []
        if item.get("read_only"):
            options.append("ro")
        if kind == "bind":
            if not source:
                raise ImportInputError(f"{self.where('volumes')}: a bind mount needs a source")
            source = self._source(source)
            bind = mapping(item.get("bind"), self.where("volumes.bind"))
            for option in ("propagation", "selinux"):
                if bind.get(option):
                    options.append(scalar(bind[option], self.where(f"volumes.bind.{option}")))
        else:
            volume = mapping(item.get("volume"), self.where("volumes.volume"))
            if volume.get("nocopy"):
                options.append("nocopy")
            if volume.get("subpath"):
                subpath = scalar(volume["subpath"], self.where("volumes.volume.subpath"))
                options.append(f"subpath={subpath}")
            if not source:
                d.raw(f"--volume={target}")
                d.note(
                    RAW,
                    f"{self.where('volumes')} {target}",
                    "an anonymous volume has no configuration key",
                )
                return
            self.file.used_volumes.setdefault(source, self.where("volumes"))
            source = self.file.volume_names.get(source, source)
        text = f"{source}:{target}"
        if options:
            text += ":" + ",".join(options)
        d.append("volumes", text)


def volume_table(name: str, spec: Any, project: str, notes: list[Note]) -> ImportedVolume | None:
    spec = mapping(spec, f"volumes.{name}")
    settings: list[tuple[str, TomlValue]] = []
    for key, value in spec.items():
        if key == "driver":
            settings.append(("driver", scalar(value, f"volumes.{name}.driver")))
        elif key == "driver_opts":
            where = f"volumes.{name}.driver_opts"
            options = string_map(mapping(value, where), where)
            settings.append(("options", [f"{k}={v}" for k, v in options.items()]))
        elif key == "labels":
            settings.append(("labels", string_map(value, f"volumes.{name}.labels")))
        elif key in ("external", "name"):
            pass
        else:
            notes.append(Note(DROPPED, f"volumes.{name}.{key}", "unknown volume key"))
    if not spec.get("external") and not spec.get("name"):
        notes.append(
            Note(
                APPROXIMATED,
                f"volumes.{name}",
                f"compose names this volume {project}_{name}; the unit uses {name!r} (copy the "
                "data over, or rename the volume, to keep what compose stored)",
            )
        )
    if not settings:
        return None
    return ImportedVolume(scalar(spec.get("name") or name, f"volumes.{name}.name"), tuple(settings))
