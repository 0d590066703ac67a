"""``[notifications]``: which events go to which channel, and where the channels' URLs are.

Parsing never imports Apprise and never reads the URLs file (a ``validate`` run by a user who
cannot read a root-only 0600 file must still work): the file is read by ``load_urls`` when a
notifier is built. Error messages never quote a URL: they carry secrets (passwords, tokens).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from psquadlet import schema
from psquadlet.checks import FieldError, check_bound, parse_duration
from psquadlet.errors import ConfigError, did_you_mean, raise_collected
from psquadlet.tomlpos import KeyPositions, tomllib
from psquadlet.tomltable import format_path
from psquadlet.watch.events import Event, EventKind

Locate = Callable[[Sequence[str]], "int | None"]
T = TypeVar("T")

DEFAULT_QUIET_PERIOD = 86400
DEFAULT_TIMEOUT = 10
DEFAULT_OUTBOX_LIMIT = 100
# Every kind an operator may act on; TEST is sent by `psquadlet notify --test` only.
DEFAULT_EVENTS: tuple[EventKind, ...] = tuple(k for k in EventKind if k is not EventKind.TEST)

_TOP_KEYS = ("urls_file", "quiet_period", "timeout", "hostname", "outbox_limit", "channels")
_CHANNEL_KEYS = ("url", "events", "containers")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


@dataclass(frozen=True)
class Channel:
    """One destination. ``url`` is "" when it comes from the URLs file (``urls_file``)."""

    name: str
    url: str = ""
    events: tuple[EventKind, ...] = DEFAULT_EVENTS
    containers: tuple[str, ...] = ()  # empty: every container (and host-wide events)

    def wants(self, event: Event) -> bool:
        if event.kind is EventKind.TEST:
            return True
        if event.kind not in self.events:
            return False
        return not self.containers or not event.container or event.container in self.containers


@dataclass(frozen=True)
class NotificationSettings:
    """The parsed ``[notifications]`` table; the default (no channels) sends nothing."""

    channels: tuple[Channel, ...] = ()
    urls_file: str = ""
    quiet_period: int = DEFAULT_QUIET_PERIOD  # seconds; 0 sends every repeat
    timeout: int = DEFAULT_TIMEOUT  # seconds, one channel's whole delivery in one flush
    hostname: str = ""  # the host named in messages; "" means this host's name
    outbox_limit: int = DEFAULT_OUTBOX_LIMIT  # messages kept per channel; oldest dropped

    def channel(self, name: str) -> Channel | None:
        for channel in self.channels:
            if channel.name == name:
                return channel
        return None


class _Collector:
    def __init__(self, source: str, base: Sequence[str], locate: Locate | None) -> None:
        self.source = source
        self.base = tuple(base)
        self.locate = locate
        self.errors: list[ConfigError] = []

    def error(self, path: Sequence[str | int], message: str, hint: str | None = None) -> None:
        full = (*self.base, *path)
        line = self.locate([p for p in full if isinstance(p, str)]) if self.locate else None
        self.errors.append(ConfigError(self.source, line, format_path(full), message, hint))

    def unknown(
        self, table: Mapping[str, Any], allowed: Sequence[str], path: Sequence[str]
    ) -> None:
        for key in table:
            if key not in allowed:
                self.error((*path, key), f"unknown key {key!r}", did_you_mean(key, allowed))


def _duration(c: _Collector, table: Mapping[str, Any], key: str, default: int) -> int:
    value = table.get(key)
    if value is None:
        return default
    maximum = schema.bound(f"notifications.{key}")
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            if isinstance(value, int):
                return check_bound(value, maximum)
            return parse_duration(value, maximum)
        except FieldError as exc:
            c.error((key,), exc.message, exc.hint)
            return default
    c.error((key,), 'expected a duration like "1d" or "30s"')
    return default


def _names(c: _Collector, path: Sequence[str], value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        c.error(path, "expected an array of strings")
        return ()
    return tuple(value)


def check_url(value: str) -> str | None:
    """The problem with an Apprise URL (never quoting it), or None when it looks like one."""
    if not _URL_RE.fullmatch(value):
        return "is not a URL of the form scheme://... (Apprise syntax, e.g. mailtos://, json://)"
    return None


def _channel(c: _Collector, name: str, raw: Any) -> Channel | None:
    path = ("channels", name)
    if not _NAME_RE.fullmatch(name):
        c.error(path, f"invalid channel name {name!r}", "letters, digits, '_', '.', '-'")
        return None
    if not isinstance(raw, Mapping):
        c.error(path, "expected a table")
        return None
    c.unknown(raw, _CHANNEL_KEYS, path)
    url = raw.get("url", "")
    if not isinstance(url, str):
        c.error((*path, "url"), "expected a string")
        url = ""
    elif url and (problem := check_url(url)):
        c.error((*path, "url"), problem)
    events = DEFAULT_EVENTS
    if "events" in raw:
        kinds = []
        allowed = [k.value for k in DEFAULT_EVENTS]
        for index, word in enumerate(_names(c, (*path, "events"), raw["events"])):
            if word in allowed:
                kinds.append(EventKind(word))
            else:
                hint = did_you_mean(word, allowed) or f"one of: {', '.join(allowed)}"
                c.error((*path, "events", index), f"unknown event {word!r}", hint)
        events = tuple(kinds)
    containers = _names(c, (*path, "containers"), raw["containers"]) if "containers" in raw else ()
    return Channel(name, url, events, containers)


def parse_notifications(
    table: Any,
    source: str,
    base: Sequence[str] = ("notifications",),
    locate: Locate | None = None,
) -> NotificationSettings:
    """Validate ``[notifications]``; every problem is reported at once, located."""
    c = _Collector(source, base, locate)
    if not isinstance(table, Mapping):
        c.error((), "expected a table")
        raise_collected(c.errors)
    c.unknown(table, _TOP_KEYS, ())
    urls_file = table.get("urls_file", "")
    if not isinstance(urls_file, str) or (urls_file and not urls_file.startswith("/")):
        c.error(("urls_file",), "must be an absolute path")
        urls_file = ""
    hostname = table.get("hostname", "")
    if not isinstance(hostname, str) or any(ch.isspace() for ch in hostname):
        c.error(("hostname",), "must be one word")
        hostname = ""
    limit = table.get("outbox_limit", DEFAULT_OUTBOX_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10000:
        c.error(("outbox_limit",), "must be an integer between 1 and 10000")
        limit = DEFAULT_OUTBOX_LIMIT
    channels: list[Channel] = []
    raw_channels = table.get("channels", {})
    if not isinstance(raw_channels, Mapping):
        c.error(("channels",), "expected a table of channels ([notifications.channels.NAME])")
        raw_channels = {}
    for name, raw in raw_channels.items():
        channel = _channel(c, str(name), raw)
        if channel is not None:
            channels.append(channel)
    settings = NotificationSettings(
        channels=tuple(sorted(channels, key=lambda ch: ch.name)),
        urls_file=urls_file,
        quiet_period=_duration(c, table, "quiet_period", DEFAULT_QUIET_PERIOD),
        timeout=max(1, _duration(c, table, "timeout", DEFAULT_TIMEOUT)),
        hostname=hostname,
        outbox_limit=limit,
    )
    if not urls_file:
        for channel in settings.channels:
            if not channel.url:
                c.error(("channels", channel.name), "has no url", "set url, or urls_file")
    raise_collected(c.errors)
    return settings


def load_urls(settings: NotificationSettings) -> dict[str, str]:
    """Channel name -> URL, from the configuration and the URLs file.

    The URLs file is TOML with one ``CHANNEL = "URL"`` line per channel. It must not be
    readable by group or others (chmod 600), since the URLs carry passwords and tokens.
    """
    urls = {ch.name: ch.url for ch in settings.channels if ch.url}
    if not settings.urls_file:
        return urls
    source = settings.urls_file
    try:
        with open(source, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    source,
                    None,
                    "",
                    f"holds secrets but is readable by group or others "
                    f"(mode {stat.S_IMODE(mode):04o})",
                    f"chmod 600 {source}",
                )
            text = handle.read().decode("utf-8")
    except OSError as exc:
        raise ConfigError(source, None, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(source, None, "", "not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        # The decoder's message may quote the line, and the line holds a secret.
        raise ConfigError(source, None, "", 'not valid TOML (CHANNEL = "URL" lines)') from None
    c = _Collector(source, (), KeyPositions(text).line)
    known = [ch.name for ch in settings.channels]
    for name, url in data.items():
        if name not in known:
            c.error(
                (name,), "no such channel in [notifications.channels]", did_you_mean(name, known)
            )
        elif not isinstance(url, str) or check_url(url):
            c.error((name,), "expected a URL string of the form scheme://...")
        elif name in urls:
            c.error((name,), "the channel's url is also set in the configuration: keep one")
        else:
            urls[name] = url
    for name in known:
        if name not in urls:
            c.error((), f"no URL for channel {name!r}", f'add {name} = "scheme://..."')
    raise_collected(c.errors)
    return urls


def table_from_file(path: str | Path, key: str, parse: Callable[..., T]) -> T | None:
    """``parse(table, source, locate=...)`` of the top-level table ``key`` of a configuration
    file, or None when the file has none (for tables config.parse_config does not carry)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), None, "", f"cannot read: {exc}") from None
    if key not in data:
        return None
    return parse(data[key], str(path), locate=KeyPositions(text).line)


def from_file(path: str | Path) -> NotificationSettings:
    """The ``[notifications]`` table of a configuration file (the default when absent)."""
    return table_from_file(path, "notifications", parse_notifications) or NotificationSettings()
