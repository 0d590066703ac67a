"""Line numbers of keys in a TOML document.

tomllib returns plain dicts without positions, but an operator fixing a configuration wants
``FILE:LINE``. This scanner reads the same text once more and records, for every table header
and every ``key = value`` line, the full key path and the line it starts on. It only has to be
right for documents tomllib already accepted, so it can be simple; when it cannot place a key,
callers fall back to the nearest enclosing key that it did place.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

__all__ = ["KeyPositions", "parse_key", "tomllib"]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def parse_key(text: str, pos: int) -> tuple[list[str], int] | None:
    """Parse a (dotted) key starting at pos; return its parts and the position after it."""
    parts: list[str] = []
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text):
            return None
        char = text[pos]
        if char == '"':
            end = pos + 1
            buf = []
            while end < len(text) and text[end] != '"':
                if text[end] == "\\" and end + 1 < len(text):
                    buf.append(text[end : end + 2])
                    end += 2
                    continue
                buf.append(text[end])
                end += 1
            if end >= len(text):
                return None
            raw = "".join(buf)
            try:
                part = str(tomllib.loads(f'k = "{raw}"')["k"])
            except tomllib.TOMLDecodeError:
                part = raw
            parts.append(part)
            pos = end + 1
        elif char == "'":
            end = text.find("'", pos + 1)
            if end < 0:
                return None
            parts.append(text[pos + 1 : end])
            pos = end + 1
        else:
            match = _BARE.match(text, pos)
            if not match:
                return None
            parts.append(match.group(0))
            pos = match.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == ".":
            pos += 1
            continue
        return parts, pos


class KeyPositions:
    """Maps key paths (tuples of key parts) to 1-based line numbers.

    An array of tables (``[[a.b]]``) numbers its elements like tomllib's lists: the keys of the
    second element are under ``("a", "b", 1, ...)``, and ``("a", "b")`` is the first one's line.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str | int, ...], int] = {}
        self._arrays: dict[tuple[str | int, ...], int] = {}
        self._line = 0
        """Array-of-tables path (with indices) -> index of its last element so far."""
        self._scan(text)

    def _indexed(self, parts: Sequence[str]) -> tuple[str | int, ...]:
        """``parts`` with the current element index after every array of tables in it."""
        out: list[str | int] = []
        for part in parts:
            out.append(part)
            index = self._arrays.get(tuple(out))
            if index is not None:
                out.append(index)
        return tuple(out)

    def _header(self, parts: list[str], array: bool) -> tuple[str | int, ...]:
        if not array:
            return self._indexed(parts)
        key = (*self._indexed(parts[:-1]), parts[-1])
        index = self._arrays.get(key, -1) + 1
        self._arrays[key] = index
        self._lines.setdefault(key, self._line)
        return (*key, index)

    def _scan(self, text: str) -> None:
        table: tuple[str | int, ...] = ()
        in_multiline: str | None = None
        depth = 0  # open brackets/braces of a value continued over several lines
        # TOML ends lines at LF (or CRLF) only: str.splitlines() would also split at U+2028,
        # U+0085, form feed ..., which are ordinary characters inside a TOML string.
        for number, raw_line in enumerate(text.split("\n"), start=1):
            self._line = number
            line = raw_line[:-1] if raw_line.endswith("\r") else raw_line
            if in_multiline is not None:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            stripped = line.strip(" \t")
            if depth > 0:
                depth += _bracket_balance(stripped)
                continue
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("["):
                array = stripped.startswith("[[")
                parsed = parse_key(stripped, 2 if array else 1)
                if parsed is not None:
                    table = self._header(parsed[0], array)
                    self._lines.setdefault(table, number)
                continue
            parsed = parse_key(line, 0)
            if parsed is None:
                continue
            parts, pos = parsed
            rest = line[pos:].lstrip()
            if not rest.startswith("="):
                continue
            path = table + tuple(parts)
            self._lines.setdefault(path, number)
            # Every intermediate dotted key is also "defined" here.
            for cut in range(len(table) + 1, len(path)):
                self._lines.setdefault(path[:cut], number)
            value = rest[1:].strip()
            for quote in ('"""', "'''"):
                if value.startswith(quote) and value.count(quote) == 1:
                    in_multiline = quote
            if in_multiline is None:
                depth = max(0, _bracket_balance(value))

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return None


def _bracket_balance(text: str) -> int:
    """Open minus closed brackets outside strings and comments (good enough for values)."""
    balance = 0
    quote: str | None = None
    skip = False
    for char in text:
        if skip:
            skip = False
            continue
        if quote is not None:
            if char == "\\" and quote == '"':
                skip = True
            elif char == quote:
                quote = None
            continue
        if char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in "[{":
            balance += 1
        elif char in "]}":
            balance -= 1
    return balance
