"""Parse ``[containers.X.perfsonar]`` into ``PerfsonarSpec``.

Problems go to the ``ErrorSink`` config hands over (config locates and formats them), every
problem of the table in one pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from psquadlet.errors import did_you_mean
from psquadlet.extension import ErrorSink
from psquadlet.perfsonar.spec import LookupService, PerfsonarSpec, PsconfigRemote

_TEXT_KEYS = (
    "site_name",
    "domain",
    "administrator_name",
    "administrator_email",
    "city",
    "region",
    "country",
    "zip_code",
)
_LS_KEYS = (*_TEXT_KEYS, "projects", "latitude", "longitude")
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
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

KeyPath = tuple["str | int", ...]


def _unknown(
    sink: ErrorSink, table: Mapping[str, Any], allowed: Sequence[str], path: KeyPath
) -> None:
    for key in table:
        if key not in allowed:
            alias = _ALIASES.get(key)
            hint = f"did you mean {alias!r}?" if alias in allowed else None
            sink.error((*path, key), "unknown key", hint or did_you_mean(key, allowed))


def _text(sink: ErrorSink, path: KeyPath, value: Any) -> str:
    """A value for lsregistrationdaemon.conf (Config::General): one line, no escapes."""
    if not isinstance(value, str):
        sink.error(path, f"must be a string, not {type(value).__name__}")
        return ""
    if _CONTROL.search(value):
        sink.error(path, "must be a single line without control characters")
        return ""
    if "\\" in value or "<" in value or ">" in value:
        sink.error(path, "must not contain '\\', '<' or '>' (lsregistrationdaemon.conf syntax)")
        return ""
    return value.strip()


def _coordinate(sink: ErrorSink, path: KeyPath, value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        sink.error(path, f"must be a number, not {type(value).__name__}")
        return None
    number = float(value)
    if not math.isfinite(number) or abs(number) > limit:
        sink.error(path, f"must be between -{limit:g} and {limit:g}")
        return None
    return number


def _lookup_service(sink: ErrorSink, table: Any, path: KeyPath) -> LookupService | None:
    if not isinstance(table, Mapping):
        sink.error(path, "must be a table")
        return None
    _unknown(sink, table, _LS_KEYS, path)
    values: dict[str, Any] = {
        key: _text(sink, (*path, key), table[key]) for key in _TEXT_KEYS if key in table
    }
    if "projects" in table:
        raw = table["projects"]
        if not isinstance(raw, list):
            sink.error((*path, "projects"), "must be a list of strings")
        else:
            values["projects"] = tuple(
                _text(sink, (*path, "projects", i), item) for i, item in enumerate(raw)
            )
    email = values.get("administrator_email", "")
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        sink.error((*path, "administrator_email"), f"{email!r} is not an email address")
    if bool(values.get("administrator_name")) != bool(email):
        sink.error(
            (*path, "administrator_name" if email else "administrator_email"),
            "administrator_name and administrator_email go together",
        )
    country = values.get("country", "")
    if country and not re.fullmatch(r"[A-Za-z]{2}", country):
        sink.error(
            (*path, "country"),
            f"{country!r} is not a two-letter ISO 3166 country code",
            "e.g. 'US', 'DE'",
        )
    values["country"] = country.upper()
    for key, limit in (("latitude", 90.0), ("longitude", 180.0)):
        if key in table:
            values[key] = _coordinate(sink, (*path, key), table[key], limit)
    return LookupService(**values)


def _remote(sink: ErrorSink, path: KeyPath, table: Any) -> PsconfigRemote | None:
    if not isinstance(table, Mapping):
        sink.error(path, "must be a table with url and configure_archives")
        return None
    _unknown(sink, table, _REMOTE_KEYS, path)
    archives = table.get("configure_archives", True)
    if not isinstance(archives, bool):
        sink.error((*path, "configure_archives"), "must be true or false")
        archives = True
    url = table.get("url")
    if not isinstance(url, str) or not url:
        sink.error((*path, "url"), "is required: the URL of a pSConfig JSON file")
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "file") or _CONTROL.search(url) or " " in url:
        sink.error((*path, "url"), f"{url!r} is not an http, https or file URL")
        return None
    return PsconfigRemote(url, archives)


def _remotes(sink: ErrorSink, raw: Any, path: KeyPath) -> tuple[PsconfigRemote, ...] | None:
    if not isinstance(raw, list):
        sink.error(path, "must be an array of tables ([[...psconfig_remotes]])")
        return None
    parsed = [_remote(sink, (*path, i), item) for i, item in enumerate(raw)]
    remotes = tuple(r for r in parsed if r is not None)
    urls = [r.url for r in remotes]
    for url in sorted({u for u in urls if urls.count(u) > 1}):
        sink.error(path, f"remote {url!r} is listed twice")
    return remotes


def parse_perfsonar(table: object, sink: ErrorSink, path: KeyPath) -> PerfsonarSpec:
    """Validate ``[containers.X.perfsonar]`` at key path ``path``; problems go to ``sink``."""
    if not isinstance(table, Mapping):
        sink.error(path, "must be a table")
        return PerfsonarSpec()
    _unknown(sink, table, _PERFSONAR_KEYS, path)
    lookup = None
    if "lookup_service" in table:
        lookup = _lookup_service(sink, table["lookup_service"], (*path, "lookup_service"))
    remotes = None
    if "psconfig_remotes" in table:
        remotes = _remotes(sink, table["psconfig_remotes"], (*path, "psconfig_remotes"))
    limits = table.get("limits_file", "")
    if not isinstance(limits, str) or (limits and not limits.startswith("/")):
        sink.error((*path, "limits_file"), "must be an absolute path to a host file")
        limits = ""
    elif _CONTROL.search(limits) or ":" in limits or "," in limits:
        sink.error((*path, "limits_file"), "must not contain ':', ',' or control characters")
        limits = ""
    return PerfsonarSpec(lookup, remotes, limits)
