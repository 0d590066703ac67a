"""The ``[containers.NAME]`` table: preset merge, the schema's simple keys, the sub-tables
(``health``, ``unit``, ``service``, ``install``, ``update``) and the extensions' tables, into
one ``model.ContainerSpec``. ``config`` calls ``parse_container`` for each table and checks
what spans containers (names, unit collisions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psquadlet import model, perfsonar, presets, schema
from psquadlet.checks import (
    FieldError,
    check_image,
    check_schedule,
    check_unit_name,
    one_of,
    parse_volume,
)
from psquadlet.errors import did_you_mean
from psquadlet.extension import ContainerExtension
from psquadlet.tomltable import Context as _Context
from psquadlet.tomltable import Table as _Table
from psquadlet.tomltable import type_name as _type_name
from psquadlet.watch.releases import TRACKS, TemplateError, check_template, conflict

# Tables inside [containers.NAME] owned by extensions (psquadlet.extension): each parses its
# table through the error context below into the ContainerSpec field named like the table.
CONTAINER_EXTENSIONS: tuple[ContainerExtension[Any], ...] = (perfsonar.EXTENSION,)


# ---------------------------------------------------------------------------------------------
# Tables

HEALTH_KEYS = (
    "cmd", "interval", "timeout", "retries", "start_period", "on_failure",
    "restart_budget", "budget_window", "retry_after", "retry_max",
)  # fmt: skip
UNIT_KEYS = ("description", "after", "wants", "requires", "before", *schema.UNIT, "extra")
SERVICE_KEYS = ("restart", "restart_sec", "timeout_start", "timeout_stop", "extra")
INSTALL_KEYS = ("wanted_by", "extra")
UPDATE_KEYS = (
    "policy", "schedule", "randomized_delay", "interval", "min_age", "health_cmd",
    "health_timeout", "keep_images", "track", "tag_pattern", "prerelease",
)  # fmt: skip
SUBTABLES = ("health", "unit", "service", "install", "update")
CONTAINER_KEYS = schema.CONTAINER_KEYS


def _merge_preset(ctx: _Context, raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The operator's table laid over the preset's (see presets' docstring for the rules)."""
    path: tuple[str | int, ...] = ("containers", name)
    merged = dict(raw)
    preset = raw.get("preset")
    variant = raw.get("variant")
    registry = raw.get("registry")
    if preset is None:
        for key in ("variant", "registry"):
            if raw.get(key) is not None:
                ctx.error((*path, key), f"'{key}' needs 'preset'")
        return merged
    if registry is not None and not _preset_registry_ok(ctx, (*path, "registry"), registry):
        return merged
    if not isinstance(preset, str):
        ctx.error((*path, "preset"), f"expected a string, got {_type_name(preset)}")
        return merged
    if variant is not None and not isinstance(variant, str):
        ctx.error((*path, "variant"), f"expected a string, got {_type_name(variant)}")
        return merged
    if preset not in presets.preset_names():
        ctx.error(
            (*path, "preset"),
            f"unknown preset {preset!r}",
            did_you_mean(preset, presets.preset_names()),
        )
        return merged
    if variant is not None and variant not in presets.variants(preset):
        ctx.error(
            (*path, "variant"),
            f"unknown variant {variant!r} of preset {preset!r}: expected one of "
            f"{', '.join(presets.variants(preset))}",
            did_you_mean(variant, presets.variants(preset)),
        )
        return merged
    base = presets.preset_values(preset, variant, name, registry)
    for key, value in base.items():
        if key in SUBTABLES and isinstance(merged.get(key), dict):
            merged[key] = {**value, **merged[key]}
        elif key not in merged:
            merged[key] = value
    return merged


def _preset_registry_ok(ctx: _Context, path: tuple[str | int, ...], registry: object) -> bool:
    """A registry host (``ghcr.io``, ``docker.io``, ``mirror.example:5000``, ``host/prefix``)."""
    if not isinstance(registry, str):
        ctx.error(path, f"expected a string, got {_type_name(registry)}")
        return False
    try:
        ref = check_image(presets.testpoint_image(registry, "latest"))
    except FieldError as e:
        ctx.error(path, f"not a registry host: {e.message}", 'e.g. "ghcr.io" or "docker.io"')
        return False
    if not ref.startswith(registry + "/"):
        ctx.error(path, f"{registry!r} is not a registry host", 'e.g. "ghcr.io" or "docker.io"')
        return False
    return True


def _parse_health(table: _Table | None) -> model.HealthSpec | None:
    if table is None:
        return None
    cmd_value = table.data.get("cmd")
    cmd: str | tuple[str, ...]
    if isinstance(cmd_value, list):
        cmd = table.strlist("cmd")
        if not cmd:
            table.ctx.error((*table.path, "cmd"), "the exec form needs at least one word")
    elif cmd_value is None:
        cmd = ""
        table.ctx.error(table.path, "missing key 'cmd': a health check needs a command")
    else:
        cmd = table.text("cmd")
        if not cmd.strip():
            table.ctx.error((*table.path, "cmd"), "a health check needs a command")
    d = model.field_defaults(model.HealthSpec)
    rows = schema.HEALTH
    return model.HealthSpec(
        cmd=cmd,
        interval=table.duration("interval", d["interval"], rows["interval"].bound),
        timeout=table.duration("timeout", d["timeout"], rows["timeout"].bound),
        retries=table.integer("retries", d["retries"], maximum=rows["retries"].bound or 0),
        start_period=table.duration("start_period", d["start_period"], rows["start_period"].bound),
        on_failure=table.text("on_failure", d["on_failure"], rows["on_failure"].check),
        restart_budget=table.integer(
            "restart_budget", d["restart_budget"], maximum=rows["restart_budget"].bound or 0
        ),
        budget_window=table.duration(
            "budget_window", d["budget_window"], rows["budget_window"].bound
        ),
        retry_after=table.duration("retry_after", d["retry_after"], rows["retry_after"].bound),
        retry_max=table.duration("retry_max", d["retry_max"], rows["retry_max"].bound),
    )


_OWNED_UNIT_KEYS = {
    "Description": "unit.description",
    "After": "unit.after",
    "Wants": "unit.wants",
    "Requires": "unit.requires",
    "Before": "unit.before",
}
_OWNED_SERVICE_KEYS = {
    "Restart": "service.restart",
    "RestartSec": "service.restart_sec",
    "TimeoutStartSec": "service.timeout_start",
    "TimeoutStopSec": "service.timeout_stop",
    "ExecStart": "command / podman_args",
    "ExecStop": "stop_signal / stop_timeout",
    "ExecStopPost": "stop_signal / stop_timeout",
    "Type": "notify",
    "NotifyAccess": "notify",
    "KillMode": "stop_signal / stop_timeout",
    "Delegate": "podman_args",
}


def _parse_unit(table: _Table | None) -> model.UnitSection:
    if table is None:
        return model.UnitSection()
    default = model.UnitSection()
    rows = schema.UNIT
    return model.UnitSection(
        description=table.text("description"),
        after=table.strlist("after", default.after, check_unit_name),
        wants=table.strlist("wants", default.wants, check_unit_name),
        requires=table.strlist("requires", (), check_unit_name),
        before=table.strlist("before", (), check_unit_name),
        start_limit_interval=table.opt_duration(
            "start_limit_interval", allow_empty=False, maximum=rows["start_limit_interval"].bound
        ),
        start_limit_burst=table.integer(
            "start_limit_burst", maximum=rows["start_limit_burst"].bound or 0
        )
        if table.has("start_limit_burst")
        else None,
        extra=table.raw_keys("extra", _OWNED_UNIT_KEYS),
    )


_RESTART = ("no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always")


def _parse_service(table: _Table | None) -> model.ServiceSection:
    if table is None:
        return model.ServiceSection()
    d = model.field_defaults(model.ServiceSection)
    return model.ServiceSection(
        restart=table.text("restart", d["restart"], one_of(*_RESTART)),
        restart_sec=table.duration("restart_sec", d["restart_sec"]),
        timeout_start=table.duration("timeout_start", d["timeout_start"]),
        timeout_stop=table.opt_duration("timeout_stop"),
        extra=table.raw_keys("extra", _OWNED_SERVICE_KEYS),
    )


def _parse_install(table: _Table | None) -> model.InstallSection:
    if table is None:
        return model.InstallSection()
    wanted_by = table.strlist("wanted_by", (), check_unit_name) if table.has("wanted_by") else None
    return model.InstallSection(
        wanted_by=wanted_by, extra=table.raw_keys("extra", {"WantedBy": "install.wanted_by"})
    )


def check_tag_pattern(value: str) -> str:
    if not value:
        return value
    try:
        return check_template(value)
    except TemplateError as e:
        raise FieldError(str(e), 'e.g. "v{version}-systemd"') from e


def _parse_update(table: _Table | None) -> model.UpdateSpec:
    if table is None:
        return model.UpdateSpec()
    d = model.field_defaults(model.UpdateSpec)
    interval = table.opt_duration("interval")
    schedule: str | None = table.text("schedule", d["schedule"], check_schedule)
    if interval is not None:
        if table.has("schedule"):
            table.ctx.error(
                (*table.path, "interval"), "set either 'schedule' or 'interval', not both"
            )
        if interval <= 0:
            table.ctx.error((*table.path, "interval"), "must be longer than 0s")
        schedule = None
    return model.UpdateSpec(
        policy=table.text("policy", d["policy"], one_of("auto", "notify", "off")),
        schedule=schedule,
        randomized_delay=table.duration("randomized_delay", d["randomized_delay"]),
        interval=interval,
        min_age=table.duration("min_age", d["min_age"]),
        health_cmd=table.strlist("health_cmd"),
        health_timeout=table.duration("health_timeout", d["health_timeout"]),
        keep_images=table.integer(
            "keep_images", d["keep_images"], maximum=schema.bound("update.keep_images")
        ),
        track=table.text("track", d["track"], one_of(*TRACKS)),
        tag_pattern=table.text("tag_pattern", d["tag_pattern"], check_tag_pattern),
        prerelease=table.flag("prerelease", d["prerelease"]),
    )


def _parse_notify(table: _Table) -> str:
    value = table.data.get("notify")
    if value is None or value is False:
        return ""
    if value is True:
        return "true"
    if value in (schema.NOTIFY_HEALTHY, schema.NOTIFY_HEALTHY_WHEN_SUPPORTED):
        return str(value)
    table.ctx.error(
        (*table.path, "notify"),
        f'expected true, false, "healthy" or "healthy-when-supported", got {value!r}',
    )
    return ""


# Container keys read by hand in _parse_container; every other row is read by _setting.
_PARSED_BY_HAND = ("preset", "variant", "registry", "image", "volumes", "notify", "health")
_CONTAINER_DEFAULTS = model.field_defaults(model.ContainerSpec)


def _setting(t: _Table, row: schema.Setting) -> object:
    """One simple key, by its schema row; the model's default where it is unset or invalid."""
    default = _CONTAINER_DEFAULTS[row.key]
    if row.type == schema.TEXT:
        return t.text(row.key, default, row.check)
    if row.type == schema.FLAG:
        return t.flag(row.key, default)
    if row.type == schema.INTEGER:
        return t.integer(row.key, default, maximum=row.bound or 10**6)
    if row.type == schema.DURATION:
        return t.duration(row.key, default, row.bound)
    if row.type == schema.LIST:
        return t.strlist(row.key, default, row.check)
    assert row.type == schema.MAP, row
    return t.strmap(row.key, default, row.key_check, row.check)


def parse_container(ctx: _Context, name: str, raw: Mapping[str, Any]) -> model.ContainerSpec:
    merged = _merge_preset(ctx, raw, name)
    extensions = {ext.key: ext for ext in CONTAINER_EXTENSIONS}
    t = _Table(ctx, merged, ("containers", name), (*CONTAINER_KEYS, *SUBTABLES, *extensions))
    path = t.path

    if "image" not in merged and "preset" not in merged:
        ctx.error(path, "missing key 'image'", 'or set preset = "perfsonar-testpoint"')
    image = t.text("image", "docker.io/library/invalid:latest", check_image, required=True)

    # Extension values; their mounts are added per run by generate (they depend on --user/-o).
    extension_values: dict[str, Any] = {
        key: ext.parse(merged[key], ctx, (*path, key))
        for key, ext in extensions.items()
        if key in merged
    }
    volumes = [parse_volume(v) for v in t.strlist("volumes", (), schema.CONTAINER["volumes"].check)]

    settings = {
        key: _setting(t, row)
        for key, row in schema.CONTAINER.items()
        if key not in _PARSED_BY_HAND and t.has(key)
    }
    spec = model.ContainerSpec(
        name=name,
        image=image,
        preset=merged.get("preset") if isinstance(merged.get("preset"), str) else None,
        variant=merged.get("variant") if isinstance(merged.get("variant"), str) else None,
        registry=merged.get("registry") if isinstance(merged.get("registry"), str) else None,
        volumes=tuple(volumes),
        notify=_parse_notify(t),
        health=_parse_health(t.table("health", HEALTH_KEYS)),
        unit=_parse_unit(t.table("unit", UNIT_KEYS)),
        service=_parse_service(t.table("service", SERVICE_KEYS)),
        install=_parse_install(t.table("install", INSTALL_KEYS)),
        update=_parse_update(t.table("update", UPDATE_KEYS)),
        **extension_values,
        **settings,  # type: ignore[arg-type]
    )
    shared_network = spec.network in ("host", "none") or spec.network.startswith("container:")
    if spec.ports and shared_network:
        ctx.error(
            (*path, "ports"),
            f"ports cannot be published with network = {spec.network!r}",
            "the container uses the host's (or no) network: remove 'ports'",
        )
    if spec.group and not spec.user:
        ctx.error((*path, "group"), "'group' needs 'user' (podman run --user USER:GROUP)")
    if spec.update.track != "digest" and not spec.update.tag_pattern:
        ctx.error(
            (*path, "update", "track"),
            f"track = {spec.update.track!r} needs update.tag_pattern (which tags are releases)",
            'e.g. tag_pattern = "v{version}-systemd"',
        )
    _check_release_pattern(ctx, path, spec)
    if spec.update.policy != "off" and spec.image_ref.digest and not spec.image_ref.tag:
        ctx.error(
            (*path, "image"),
            "an image pinned by digest alone cannot be upgraded",
            'add a tag, or set update.policy = "off"',
        )
    return spec


def _check_release_pattern(
    ctx: _Context, path: tuple[str | int, ...], spec: model.ContainerSpec
) -> None:
    """A release track whose tag_pattern contradicts the image (``releases.conflict``)."""
    upd = spec.update
    if upd.track == "digest" or not upd.tag_pattern:
        return
    try:
        found = conflict(upd.tag_pattern, spec.image_ref)
    except TemplateError:
        return  # reported as the key's own error
    if found is not None:
        ctx.error((*path, "update", "tag_pattern"), *found)
