"""Recognise the upstream perfSONAR commands and say them with the preset.

An operator who imports the guide's ``docker run`` line (or perfSONAR's compose file) should
get ``preset = "perfsonar-testpoint"`` and nothing else, so that improvements to the preset
reach them; only what their command does differently is spelled out. The comparison is made
against the preset as the config loader will apply it (``psquadlet.presets``), with the loader's
merge rules: a key set here replaces the preset's value, a sub-table merges key by key.

Three things of the preset go beyond the upstream ``docker run`` lines, from perfSONAR's
compose files and Docker's defaults: ``TZ=UTC``, restart on failure, the persisted pSConfig
folder, and CAP_NET_RAW (which Docker grants by default and Podman does not). They are kept
when the imported command is silent about them, and listed in the output.
"""

from __future__ import annotations

import dataclasses

from psquadlet import host, imageref, presets
from psquadlet.importer.draft import PRESET, Draft
from psquadlet.tomlwriter import TomlValue

REPOSITORY = presets.TESTPOINT_REPOSITORY
_SUBTABLES = ("service", "update", "unit", "health", "install")


def variant_of(image: str) -> str | None:
    """The preset variant for a perfSONAR testpoint image, None for any other image.

    Only the repository the preset names (on any registry: upstream's two and mirrors) is
    represented by it; the variant is the host module's one reading of upstream's tags.
    """
    ref = imageref.normalize(image)
    if ref.repository != REPOSITORY:
        return None
    return host.testpoint_variant(ref)


def choose_registry(d: Draft, ref: imageref.ImageRef) -> str | None:
    """The preset's ``registry`` for an imported testpoint image (None: the default), and a
    note saying which one and why."""
    named = ref.registry
    if named == presets.DEFAULT_REGISTRY:
        d.note(PRESET, "registry", f"{named}: where upstream publishes ({presets.REGISTRY_REASON})")
        return None
    if named in presets.UPSTREAM_REGISTRIES:
        d.note(
            PRESET,
            "registry",
            f"{presets.DEFAULT_REGISTRY} instead of {named}: {presets.REGISTRY_REASON}; "
            f'set registry = "{named}" to keep {named}',
        )
        return None
    d.note(PRESET, "registry", f"{named}: the mirror the command names")
    return named


def _empty(value: TomlValue) -> TomlValue:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0
    if isinstance(value, str):
        return ""
    if isinstance(value, dict):
        return {}
    return []


def _cap(name: str) -> str:
    upper = name.upper()
    return upper if upper.startswith("CAP_") else f"CAP_{upper}"


def _with_addition(key: str, mine: TomlValue, addition: TomlValue) -> TomlValue:
    """The operator's value plus the preset's addition, where it does not contradict it."""
    if isinstance(mine, dict) and isinstance(addition, dict):
        return {**{k: v for k, v in addition.items() if k not in mine}, **mine}
    if key == "volumes" and isinstance(mine, list) and isinstance(addition, list):
        targets = {str(v).split(":")[1] for v in mine if ":" in str(v)}
        return [*mine, *(v for v in addition if str(v).split(":")[1] not in targets)]
    if key == "cap_add" and isinstance(mine, list) and isinstance(addition, list):
        have = {_cap(str(c)) for c in mine}
        return [*mine, *(c for c in addition if _cap(str(c)) not in have)]
    return mine


_ADDITIONS = {
    "environment": "sets {value} (as perfSONAR's compose files do)",
    "volumes": "keeps perfSONAR's state in named volumes: {value} (the compose files persist "
    "the pSConfig folder)",
    "cap_add": "adds {value} (Docker grants CAP_NET_RAW by default; Podman does not)",
}


def _addition_values(base: dict[str, TomlValue]) -> dict[str, TomlValue]:
    """What the preset has beyond the upstream docker run lines, read from the preset."""
    volumes = base.get("volumes")
    return {
        "environment": base.get("environment", {}),
        "volumes": [v for v in volumes if not str(v).startswith("/")]
        if isinstance(volumes, list)
        else [],
        "cap_add": base.get("cap_add", []),
    }


def apply_preset(d: Draft) -> bool:
    """Rewrite a perfSONAR testpoint draft as preset + differences; False for other images."""
    image = d.settings.get("image")
    if not isinstance(image, str):
        return False
    variant = variant_of(image)
    if variant is None:
        return False
    ref = imageref.normalize(image)
    registry = choose_registry(d, ref)
    d.settings["image"] = str(
        dataclasses.replace(ref, registry=registry or presets.DEFAULT_REGISTRY)
    )
    base: dict[str, TomlValue] = presets.preset_values(
        presets.PERFSONAR_TESTPOINT, variant, d.name, registry
    )
    additions = _addition_values(base)
    settings: dict[str, TomlValue] = {"preset": presets.PERFSONAR_TESTPOINT, "variant": variant}
    if registry is not None:
        settings["registry"] = registry
    for key, value in d.settings.items():
        if key not in base:
            settings[key] = value
    for key, preset_value in base.items():
        if key in _SUBTABLES or key == "description" or (key == "notify" and key not in d.settings):
            continue  # docker run cannot say notify: the preset's (healthy-when-supported) stays
        given = d.settings.get(key, _empty(preset_value))
        mine = given
        if key in additions:
            mine = _with_addition(key, given, additions[key])
            if mine != given:
                _note_addition(d, key, given, mine)
        if mine != preset_value:
            settings[key] = mine
    service = d.sections.get("service", {})
    preset_service = base.get("service")
    assert isinstance(preset_service, dict)
    if "restart" in service:
        if service["restart"] == preset_service.get("restart"):
            del service["restart"]
    else:
        d.note(PRESET, "restart", "restarts the container when it fails (as the compose files do)")
    if not service:
        d.sections.pop("service", None)
    d.settings = settings
    return True


def _note_addition(d: Draft, key: str, given: TomlValue, merged: TomlValue) -> None:
    if isinstance(merged, dict) and isinstance(given, dict):
        added = ", ".join(f"{k}={v}" for k, v in merged.items() if k not in given)
    elif isinstance(merged, list) and isinstance(given, list):
        added = ", ".join(str(v).replace(":", " at ", 1) for v in merged if v not in given)
    else:  # pragma: no cover - additions are maps and lists
        added = str(merged)
    d.note(PRESET, key, _ADDITIONS[key].format(value=added))
