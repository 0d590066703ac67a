"""The project's one TOML writer, shared by ``psquadlet init`` and ``psquadlet import``.

The standard library reads TOML but does not write it, and tomlkit differs across Debian 11,
12 and 13 (and is EPEL-only on EL9), so this small writer is the project's own. What it writes
is a file an operator reads and edits: keys in the schema's order, short values inline,
comments that say what was left behind. It handles exactly the value types of the
configuration schema (strings, integers, booleans, arrays of those, and string-keyed tables)
and refuses anything else, so that what it writes always reads back as the same data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

TomlValue = Union[str, int, bool, Sequence["TomlValue"], Mapping[str, "TomlValue"]]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


class TomlWriteError(ValueError):
    """A value TOML cannot hold (a lone surrogate, an integer beyond 64 bits, a float that is
    not finite); inside a document, the message starts with the key path."""


INLINE_WIDTH = 100
"""Inline arrays and tables longer than this are spread over lines (or become sub-tables)."""


def string(text: str) -> str:
    """A TOML basic string: every control character escaped, the rest kept as written."""
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        elif 0xD800 <= ord(char) <= 0xDFFF:
            # A lone surrogate cannot be encoded as UTF-8, so it can never be a TOML string.
            raise TomlWriteError(f"cannot write a lone surrogate (U+{ord(char):04X}) in TOML")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def key(name: str) -> str:
    """A key, bare when TOML allows it, quoted otherwise."""
    if _BARE_KEY.fullmatch(name):
        return name
    return string(name)


def key_path(path: Sequence[str]) -> str:
    return ".".join(key(part) for part in path)


def inline(value: TomlValue) -> str:
    """One value on one line."""
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise TomlWriteError(f"{value} does not fit TOML's 64-bit integers")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TomlWriteError("only finite numbers are written")
        return repr(value)
    if isinstance(value, str):
        return string(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{key(k)} = {inline(v)}" for k, v in value.items())
        return "{ " + items + " }"
    if isinstance(value, Sequence):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _assignment(name: str, value: TomlValue) -> str:
    line = f"{key(name)} = {inline(value)}"
    if (
        len(line) > INLINE_WIDTH
        and isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) >= 1
    ):
        body = "".join(f"    {inline(v)},\n" for v in value)
        return f"{key(name)} = [\n{body}]"
    return line


def comment_lines(text: str) -> list[str]:
    """``# `` lines for a free text; a newline in the text starts another comment line."""
    lines = []
    for raw in text.splitlines() or [""]:
        cleaned = "".join(c if c.isprintable() or c == "\t" else "?" for c in raw)
        lines.append(f"# {cleaned}".rstrip())
    return lines


@dataclass(frozen=True)
class Table:
    """One ``[a.b.c]`` table: its comments (written above the header) and its entries."""

    path: tuple[str, ...]
    entries: tuple[tuple[str, TomlValue], ...]
    comments: tuple[str, ...] = ()


def _shown(path: Sequence[str]) -> str:
    """A key path for a message, even when a part cannot be written."""
    return ".".join(path).encode("utf-8", "backslashreplace").decode("utf-8")


def _table_text(table: Table) -> list[str]:
    lines: list[str] = []
    for text in table.comments:
        lines.extend(comment_lines(text))
    try:
        lines.append(f"[{key_path(table.path)}]")
    except TomlWriteError as exc:
        raise TomlWriteError(f"{_shown(table.path)}: {exc}") from None
    hoisted: list[Table] = []
    for name, value in table.entries:
        try:
            line = _assignment(name, value)
        except TomlWriteError as exc:
            raise TomlWriteError(f"{_shown((*table.path, name))}: {exc}") from None
        if isinstance(value, Mapping) and len(line) > INLINE_WIDTH:
            hoisted.append(Table((*table.path, name), tuple(value.items())))
            continue
        lines.append(line)
    for sub in hoisted:
        lines.append("")
        lines.extend(_table_text(sub))
    return lines


def document(tables: Sequence[Table], header: Sequence[str] = ()) -> str:
    """The whole file: header comments, then each table separated by a blank line."""
    lines: list[str] = []
    for text in header:
        lines.extend(comment_lines(text))
    for table in tables:
        if lines:
            lines.append("")
        lines.extend(_table_text(table))
    return "\n".join(lines) + "\n"
