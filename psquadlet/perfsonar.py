"""perfSONAR settings that must survive an upgrade of the testpoint image.

Removing the testpoint container loses everything written inside it, and upgrading means
removing it. What the testpoint keeps is therefore split three ways:

* Folders the testpoint owns and changes at run time (the pSConfig folder, the Lookup Service
  registration's identity, pSConfig's state) are **named volumes**. Podman copies the image's
  content into an empty named volume on first use, so the image's defaults appear, and from
  then on the folder outlives every container. An empty bind mount would hide those defaults.
* Single files an operator configures (``/etc/perfsonar/lsregistrationdaemon.conf``) cannot
  be a volume. psquadlet renders them from ``[containers.X.perfsonar]`` into a host file under
  ``/etc/psquadlet/perfsonar/<container>/`` and bind-mounts it **read-only** (``ro,z``: relabelled
  for SELinux) over the file in the container: the TOML is the one place it is written, an
  upgrade cannot lose it, and an edit inside the container fails loudly instead of being
  silently lost at the next upgrade.
  When the table does not declare them, the image's file is used as it is.
* The pSConfig agent's remotes (``pscheduler-agent.json``) live inside the persisted pSConfig
  folder. When remotes are declared, the rendered file is bind-mounted read-only over that one
  file, so ``psconfig remote add`` is no longer needed after an upgrade (nor possible: the TOML
  is the source). Other files in the folder stay the operator's, and persist.
* ``/etc/pscheduler/limits.conf`` is an operator-written JSON document too rich to be worth
  re-expressing in TOML: ``limits_file`` names a host file that is bind-mounted read-only.

The files psquadlet renders here go through the same plan/apply as the units (generated
marker, atomic write, only when changed).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from psquadlet.errors import ConfigError, did_you_mean, raise_collected

if TYPE_CHECKING:
    from psquadlet.model import Config
    from psquadlet.plan import Plan

HOST_DIR = "/etc/psquadlet/perfsonar"
LSREG_CONF = "/etc/perfsonar/lsregistrationdaemon.conf"
AGENT_JSON = "/etc/perfsonar/psconfig/pscheduler-agent.json"
LIMITS_CONF = "/etc/pscheduler/limits.conf"

# Folder in the container -> suffix of the named volume holding it (one set per container).
STATE_FOLDERS: tuple[tuple[str, str], ...] = (
    ("/etc/perfsonar/psconfig", "psconfig"),
    ("/var/lib/perfsonar/lsregistrationdaemon", "lsregistration"),
    ("/var/lib/perfsonar/psconfig", "psconfig-state"),
)

_LS_KEYS = (
    "site_name",
    "domain",
    "projects",
    "administrator_name",
    "administrator_email",
    "city",
    "region",
    "country",
    "zip_code",
    "latitude",
    "longitude",
)
# Names an operator may reach for that are too far from ours for a spelling suggestion.
_ALIASES = {
    "zip": "zip_code",
    "postal_code": "zip_code",
    "postcode": "zip_code",
    "state": "region",
    "lat": "latitude",
    "lon": "longitude",
    "lng": "longitude",
    "site": "site_name",
    "admin_name": "administrator_name",
    "admin_email": "administrator_email",
    "email": "administrator_email",
    "name": "administrator_name",
    "site_project": "projects",
    "project": "projects",
    "remotes": "psconfig_remotes",
    "configure-archives": "configure_archives",
}
_PERFSONAR_KEYS = ("lookup_service", "psconfig_remotes", "limits_file")
_REMOTE_KEYS = ("url", "configure_archives")

Locate = Callable[[Sequence[str]], "int | None"]


@dataclass(frozen=True)
class LookupService:
    """The Lookup Service registration (lsregistrationdaemon.conf). Empty strings: not set."""

    site_name: str = ""
    domain: str = ""
    projects: tuple[str, ...] = ()
    administrator_name: str = ""
    administrator_email: str = ""
    city: str = ""
    region: str = ""
    country: str = ""
    zip_code: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class PsconfigRemote:
    url: str
    configure_archives: bool = True


@dataclass(frozen=True)
class PerfsonarSpec:
    """``[containers.X.perfsonar]``. ``psconfig_remotes`` None: remotes are not managed."""

    lookup_service: LookupService | None = None
    psconfig_remotes: tuple[PsconfigRemote, ...] | None = None
    limits_file: str = ""


@dataclass(frozen=True)
class HostFile:
    """A file psquadlet writes on the host and mounts read-only into the container."""

    host_path: str
    container_path: str
    content: str


def state_volumes(container: str) -> tuple[tuple[str, str], ...]:
    """(volume name, folder in the container) for each persisted folder of ``container``."""
    return tuple((f"{container}-{suffix}", folder) for folder, suffix in STATE_FOLDERS)


def host_dir(container: str) -> str:
    return f"{HOST_DIR}/{container}"


# --------------------------------------------------------------------------- parsing


def _format_path(parts: Sequence[str | int]) -> str:
    """The spelling the config loader uses: ``containers.tp.perfsonar.psconfig_remotes[1].url``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            piece = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            text += f".{piece}" if text else piece
    return text


class _Collector:
    def __init__(self, file: str, base: Sequence[str], locate: Locate | None) -> None:
        self.file = file
        self.base = tuple(base)
        self.locate = locate
        self.errors: list[ConfigError] = []

    def error(self, path: Sequence[str | int], message: str, hint: str | None = None) -> None:
        full = (*self.base, *path)
        keys = [p for p in full if isinstance(p, str)]
        line = self.locate(keys) if self.locate else None
        self.errors.append(ConfigError(self.file, line, _format_path(full), message, hint))

    def unknown(
        self, table: Mapping[str, Any], allowed: Sequence[str], path: Sequence[str | int]
    ) -> None:
        for key in table:
            if key not in allowed:
                alias = _ALIASES.get(key)
                hint = f"did you mean {alias!r}?" if alias in allowed else None
                self.error((*path, key), "unknown key", hint or did_you_mean(key, allowed))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(c: _Collector, path: Sequence[str | int], value: Any) -> str:
    """A value for lsregistrationdaemon.conf (Config::General): one line, no escapes."""
    if not isinstance(value, str):
        c.error(path, f"must be a string, not {type(value).__name__}")
        return ""
    if _CONTROL.search(value):
        c.error(path, "must be a single line without control characters")
        return ""
    if "\\" in value or "<" in value or ">" in value:
        c.error(path, "must not contain '\\', '<' or '>' (lsregistrationdaemon.conf syntax)")
        return ""
    return value.strip()


def _coordinate(c: _Collector, path: Sequence[str | int], value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        c.error(path, f"must be a number, not {type(value).__name__}")
        return None
    number = float(value)
    if not math.isfinite(number) or abs(number) > limit:
        c.error(path, f"must be between -{limit:g} and {limit:g}")
        return None
    return number


def _lookup_service(c: _Collector, table: Any) -> LookupService | None:
    path = ("lookup_service",)
    if not isinstance(table, Mapping):
        c.error(path, "must be a table")
        return None
    c.unknown(table, _LS_KEYS, path)
    values: dict[str, Any] = {}
    for key in (
        "site_name",
        "domain",
        "administrator_name",
        "administrator_email",
        "city",
        "region",
        "country",
        "zip_code",
    ):
        if key in table:
            values[key] = _text(c, (*path, key), table[key])
    if "projects" in table:
        raw = table["projects"]
        if not isinstance(raw, list):
            c.error((*path, "projects"), "must be a list of strings")
        else:
            values["projects"] = tuple(
                _text(c, (*path, "projects", i), item) for i, item in enumerate(raw)
            )
    email = values.get("administrator_email", "")
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        c.error((*path, "administrator_email"), f"{email!r} is not an email address")
    if bool(values.get("administrator_name")) != bool(email):
        c.error(
            (*path, "administrator_name" if email else "administrator_email"),
            "administrator_name and administrator_email go together",
        )
    country = values.get("country", "")
    if country and not re.fullmatch(r"[A-Za-z]{2}", country):
        c.error(
            (*path, "country"),
            f"{country!r} is not a two-letter ISO 3166 country code",
            "e.g. 'US', 'DE'",
        )
    values["country"] = country.upper()
    for key, limit in (("latitude", 90.0), ("longitude", 180.0)):
        if key in table:
            values[key] = _coordinate(c, (*path, key), table[key], limit)
    return LookupService(**values)


def _remote(c: _Collector, index: int, table: Any) -> PsconfigRemote | None:
    path: tuple[str | int, ...] = ("psconfig_remotes", index)
    if not isinstance(table, Mapping):
        c.error(path, "must be a table with url and configure_archives")
        return None
    c.unknown(table, _REMOTE_KEYS, path)
    archives = table.get("configure_archives", True)
    if not isinstance(archives, bool):
        c.error((*path, "configure_archives"), "must be true or false")
        archives = True
    url = table.get("url")
    if not isinstance(url, str) or not url:
        c.error((*path, "url"), "is required: the URL of a pSConfig JSON file")
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "file") or _CONTROL.search(url) or " " in url:
        c.error((*path, "url"), f"{url!r} is not an http, https or file URL")
        return None
    return PsconfigRemote(url, archives)


def parse_perfsonar(
    table: Any,
    file: str,
    base: Sequence[str] = ("perfsonar",),
    locate: Locate | None = None,
) -> PerfsonarSpec:
    """Validate ``[containers.X.perfsonar]``; every problem is reported at once, located."""
    c = _Collector(file, base, locate)
    if not isinstance(table, Mapping):
        c.error((), "must be a table")
        raise_collected(c.errors)
    c.unknown(table, _PERFSONAR_KEYS, ())
    lookup = _lookup_service(c, table["lookup_service"]) if "lookup_service" in table else None
    remotes: tuple[PsconfigRemote, ...] | None = None
    if "psconfig_remotes" in table:
        raw = table["psconfig_remotes"]
        if not isinstance(raw, list):
            c.error(("psconfig_remotes",), "must be an array of tables ([[...psconfig_remotes]])")
        else:
            parsed = [_remote(c, i, item) for i, item in enumerate(raw)]
            remotes = tuple(r for r in parsed if r is not None)
            urls = [r.url for r in remotes]
            for url in sorted({u for u in urls if urls.count(u) > 1}):
                c.error(("psconfig_remotes",), f"remote {url!r} is listed twice")
    limits = table.get("limits_file", "")
    if not isinstance(limits, str) or (limits and not limits.startswith("/")):
        c.error(("limits_file",), "must be an absolute path to a host file")
        limits = ""
    elif _CONTROL.search(limits) or ":" in limits or "," in limits:
        c.error(("limits_file",), "must not contain ':', ',' or control characters")
        limits = ""
    raise_collected(c.errors)
    return PerfsonarSpec(lookup, remotes, limits)


# --------------------------------------------------------------------------- rendering


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def render_lsregistrationdaemon(ls: LookupService, header: str = "") -> str:
    """lsregistrationdaemon.conf (Config::General syntax); unset keys keep the daemon's defaults.

    Every value has already been checked to be one line without '\\', '<' or '>'; a '#' would
    start a comment, so it is escaped the way Config::General reads it.
    """

    def value(text: str) -> str:
        return text.replace("#", "\\#")

    lines = [header.rstrip("\n")] if header else []
    for key in ("site_name", "domain"):
        text = getattr(ls, key)
        if text:
            lines.append(f"{key} {value(text)}")
    lines.extend(f"site_project {value(p)}" for p in ls.projects if p)
    for key in ("city", "region", "country", "zip_code"):
        text = getattr(ls, key)
        if text:
            lines.append(f"{key} {value(text)}")
    if ls.latitude is not None:
        lines.append(f"latitude {_number(ls.latitude)}")
    if ls.longitude is not None:
        lines.append(f"longitude {_number(ls.longitude)}")
    if ls.administrator_name:
        lines += [
            "<administrator>",
            f"    name {value(ls.administrator_name)}",
            f"    email {value(ls.administrator_email)}",
            "</administrator>",
        ]
    return "\n".join(lines) + "\n"


def render_agent_json(remotes: Sequence[PsconfigRemote]) -> str:
    """pscheduler-agent.json as ``psconfig remote add`` would leave it (JSON has no comments)."""
    doc = {"remotes": [{"url": r.url, "configure-archives": r.configure_archives} for r in remotes]}
    return json.dumps(doc, indent=4) + "\n"


def host_files(container: str, spec: PerfsonarSpec, header: str = "") -> tuple[HostFile, ...]:
    """The files to write under ``/etc/psquadlet/perfsonar/<container>/``.

    ``header`` is the generated-file marker (a '#' comment); JSON gets none, which is why the
    marker for it has to be recognised by its location instead.
    """
    files = []
    folder = host_dir(container)
    if spec.lookup_service is not None:
        files.append(
            HostFile(
                f"{folder}/lsregistrationdaemon.conf",
                LSREG_CONF,
                render_lsregistrationdaemon(spec.lookup_service, header),
            )
        )
    if spec.psconfig_remotes is not None:
        files.append(
            HostFile(
                f"{folder}/pscheduler-agent.json",
                AGENT_JSON,
                render_agent_json(spec.psconfig_remotes),
            )
        )
    return tuple(files)


def bind_mounts(container: str, spec: PerfsonarSpec) -> tuple[str, ...]:
    """``volumes`` entries (SRC:DST:OPTS) that put the host files over the container's files."""
    mounts = [f"{f.host_path}:{f.container_path}:ro,z" for f in host_files(container, spec)]
    if spec.limits_file:
        mounts.append(f"{spec.limits_file}:{LIMITS_CONF}:ro,z")
    return tuple(mounts)


def host_file_plans(config: Config, root: Path = Path("/")) -> tuple[Plan, ...]:
    """One plan per container with a perfsonar table: its folder under HOST_DIR.

    psquadlet owns those folders as a whole (the JSON file cannot carry the generated-file
    marker), so files there are replaced without ``--force``, and a file psquadlet no longer
    renders is removed only when it carries the marker. ``root`` prefixes the paths (tests).
    """
    # Imported here: config imports this module, and plan imports render, which reads model.
    from psquadlet.plan import compute_plan  # noqa: PLC0415
    from psquadlet.render import UnitFile, marker  # noqa: PLC0415

    plans = []
    for spec in config.containers:
        if not isinstance(spec.perfsonar, PerfsonarSpec):
            continue
        folder = root / host_dir(spec.name).lstrip("/")
        files = host_files(spec.name, spec.perfsonar, marker(config.source))
        units = [UnitFile(f.host_path.rsplit("/", 1)[1], f.content) for f in files]
        plans.append(compute_plan(units, folder, force=True))
    return tuple(plans)
