"""Quoting, escaping and validation of values for systemd unit files and Quadlet.

This is the only module in psquadlet that knows how systemd and Quadlet read a value. Everyone
else hands it plain text (the value the operator means) and gets back the text to put after
``Key=``, or a ``UnitValueError`` saying why that value cannot be written safely.

What the readers do, and therefore what we must undo (measured against Podman 5.4.2's Quadlet
generator and systemd 252/257; see tests/oracle):

* Both read a file line by line, strip whitespace around the line, and join a line that ends
  in a backslash with the next one. A newline inside a value would start a new key; a value
  ending in a backslash would swallow the next line. Neither can be escaped in a plain value.
* Quadlet's Go parser strips *Unicode* whitespace (NBSP, U+2000.., U+3000, ...) at both ends
  of a line, systemd only ASCII whitespace: leading/trailing whitespace of any kind in a value
  that is not quoted is refused.
* Quadlet's single-value lookup (``Lookup``, e.g. HostName=) drops a double quote at either
  end of the value (5.4.2 reads ``say "hi"`` as ``say "hi``; later releases drop only a
  matched pair), so such values are refused for single-valued verbatim keys. Repeatable keys
  (``LookupAll``, e.g. Tmpfs=) keep quotes.
* Quadlet re-quotes every podman argument into ExecStart= without touching ``%`` or ``$``;
  systemd then expands ``%`` specifiers (after unquoting, so a C escape such as ``\\x25`` is not a
  way around it) and ``$VAR`` / ``${VAR}``. Hence ``%`` -> ``%%`` in every value that reaches
  systemd and ``$`` -> ``$$`` in every value that reaches an Exec line.
* A podman argument that is exactly ``;`` is written unquoted by Quadlet and then read by
  systemd as the separator between two commands: refused for Quadlet keys. In a plain
  ExecStart= we write ``\\;``, systemd's documented escape for a literal semicolon.
* Quadlet's Go word splitter (unlike systemd's C one) stops at an empty word (``""``): empty
  list items are refused for Quadlet keys.

Control characters: NUL, newline, CR and every other C0/C1 control character and DEL are
refused everywhere. Tab is accepted inside a value: both splitters treat it as plain
whitespace, it survives inside quotes (we write it as ``\\t``), and refusing it would gain
nothing. At the ends of an unquoted value it is refused like any other whitespace.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from psquadlet.quadlet_keys import Kind, QuadletKey

__all__ = [
    "UnitValueError",
    "check_raw",
    "check_text",
    "escape_dollars",
    "escape_specifiers",
    "exec_command",
    "join_words",
    "quote_word",
    "render_value",
]


class UnitValueError(ValueError):
    """A value that cannot be written so that systemd/Quadlet read it back unchanged.

    ``reason`` is a short sentence for the operator (no key path: the caller knows where the
    value came from and adds that).
    """

    def __init__(self, reason: str, value: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value


#: Longest value accepted. systemd refuses unit file lines over LONG_LINE_MAX (1 MiB) and a
#: whole ExecStart= line holds many values, each of which may double in size when escaped.
MAX_VALUE_LENGTH = 64 * 1024

# unicode.IsSpace in Go (what Quadlet's strings.TrimSpace strips), which is a superset of
# systemd's WHITESPACE (" \t\n\r").
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# Separators of both word splitters.
_SEPARATORS = " \t\n\r"

# Characters that force quoting of a word (besides separators and controls).
_NEEDS_QUOTING = frozenset("\"'\\")


def _describe(char: str) -> str:
    names = {
        "\x00": "a NUL byte",
        "\n": "a newline",
        "\r": "a carriage return",
        "\x7f": "a DEL character",
    }
    if char in names:
        return names[char]
    code = f"U+{ord(char):04X}"
    try:
        return f"the character {code} ({unicodedata.name(char)})"
    except ValueError:
        return f"the control character {code}"


def check_text(value: str) -> None:
    """Refuse characters that no quoting can carry through a unit file.

    Refused: NUL, newline, CR, every other C0 and C1 control character and DEL, and lone
    surrogates (not encodable as UTF-8). Tab is accepted (see the module docstring).
    """
    if not isinstance(value, str):
        raise UnitValueError(f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_VALUE_LENGTH:
        raise UnitValueError(
            f"is {len(value)} characters long; unit file values are limited to "
            f"{MAX_VALUE_LENGTH} (systemd refuses lines over 1 MiB)"
        )
    for offset, char in enumerate(value):
        code = ord(char)
        if char == "\t":
            continue
        if code < 0x20 or 0x7F <= code <= 0x9F:
            what = _describe(char)
            if char in "\n\r":
                why = "it would end the line and let the rest be read as another setting"
            elif char == "\x00":
                why = "unit files cannot contain NUL"
            else:
                why = "control characters are not allowed in unit files"
            raise UnitValueError(f"contains {what} at position {offset + 1}: {why}", value)
        if 0xD800 <= code <= 0xDFFF:
            raise UnitValueError(
                f"contains a lone surrogate U+{code:04X} at position {offset + 1}, "
                "which is not valid text",
                value,
            )


def check_raw(value: str) -> None:
    """Refuse a raw systemd value (an operator's ``extra`` key) that would not be read back as
    written: control characters, whitespace at either end (both readers strip it, and a value
    of only whitespace would become the empty "reset" assignment), a trailing backslash (line
    continuation). Everything else, ``%`` specifiers included, is the operator's syntax."""
    check_text(value)
    if value:
        _check_edges(value)


def escape_specifiers(value: str) -> str:
    """``%`` -> ``%%``: systemd expands ``%x`` specifiers in almost every setting."""
    return value.replace("%", "%%")


def escape_dollars(value: str) -> str:
    """``$`` -> ``$$``: systemd substitutes ``$VAR`` and ``${VAR}`` in Exec lines."""
    return value.replace("$", "$$")


def _needs_quoting(word: str) -> bool:
    if word in {"", ";"}:
        return True
    return any(c in _SEPARATORS or c in _NEEDS_QUOTING or c in _GO_SPACE for c in word)


def quote_word(value: str) -> str:
    """One word, quoted so that the C-unescaping word splitters (systemd's Exec lines,
    Quadlet's Exec=/PodmanArgs=/Environment=...) return exactly ``value``.

    Only quoting: ``%`` and ``$`` are left alone (render_value and exec_command add those
    escapes where the setting needs them). Plain words stay unquoted, for readable units.
    """
    check_text(value)
    if not _needs_quoting(value):
        return value
    body = value.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    return f'"{body}"'


def join_words(words: Sequence[str]) -> str:
    """Space-separated list of quote_word()s; split_words() reads it back."""
    if isinstance(words, str):
        raise TypeError("join_words() takes a sequence of words, not a string")
    return " ".join(quote_word(word) for word in words)


def _quote_strv_word(word: str) -> str:
    """A word for splitters that honour quotes but not backslashes (Quadlet's LookupAllStrv).

    No escape exists, so a word with both kinds of quote is written as adjacent quoted
    segments ("a'b"'c"d'), which the splitter concatenates into one word.
    """
    if not _needs_quoting(word):
        return word
    segments: list[str] = []
    current: list[str] = []
    quote = ""
    for char in word:
        wanted = "'" if char == '"' else '"' if char == "'" else quote or '"'
        if quote and wanted != quote:
            segments.append(quote + "".join(current) + quote)
            current = []
        quote = wanted
        current.append(char)
    segments.append(quote + "".join(current) + quote)
    return "".join(segments)


# --- systemd command lines ---------------------------------------------------------------

_EXEC_PREFIXES = "-@:+!|"


def _exec_word(value: str) -> str:
    """One argument of a systemd Exec line: specifiers and dollars escaped, then quoted."""
    check_text(value)
    if value == ";":
        return "\\;"
    return quote_word(escape_dollars(escape_specifiers(value)))


def exec_command(argv: Sequence[str]) -> str:
    """The value of ExecStart= (or ExecStop=, ...) that runs exactly ``argv``.

    argv[0] must be an absolute path without whitespace, quotes or ``%``/``$`` (systemd
    resolves and checks it separately from the arguments), and must not start with one of
    systemd's prefix characters.
    """
    if isinstance(argv, str):
        raise TypeError("exec_command() takes a sequence of arguments, not a string")
    if not argv:
        raise UnitValueError("an empty command line cannot be run")
    program = argv[0]
    check_text(program)
    if not program.startswith("/"):
        raise UnitValueError(f"the program {program!r} must be an absolute path")
    if any(c in program for c in " \t\"'\\%$") or any(c in _GO_SPACE for c in program):
        raise UnitValueError(
            f"the program path {program!r} must not contain whitespace, quotes, "
            "backslashes, '%' or '$'"
        )
    if program.endswith("/"):
        raise UnitValueError(f"the program path {program!r} names a directory")
    return " ".join([program, *(_exec_word(arg) for arg in argv[1:])])


# --- rendering per key kind -----------------------------------------------------------------

_BOOLEANS = {
    "true": "true",
    "yes": "true",
    "on": "true",
    "1": "true",
    "false": "false",
    "no": "false",
    "off": "false",
    "0": "false",
}


def _check_edges(value: str) -> None:
    if value == "":
        raise UnitValueError("must not be empty")
    if value[0] in _GO_SPACE or value[-1] in _GO_SPACE:
        raise UnitValueError(
            "must not start or end with whitespace: unit file readers strip it", value
        )
    if value.endswith("\\"):
        raise UnitValueError(
            "must not end with a backslash: it would join the next line of the unit file",
            value,
        )


def _verbatim(value: str, *, single: bool) -> str:
    check_text(value)
    _check_edges(value)
    if single and (value.startswith('"') or value.endswith('"')):
        raise UnitValueError(
            "must not start or end with a double quote: Quadlet strips quotes at the ends "
            "of a single-valued key",
            value,
        )
    if value == ";":
        raise UnitValueError("must not be a lone ';': systemd reads it as a command separator")
    return escape_dollars(escape_specifiers(value))


def _quadlet_word(word: str, key: QuadletKey) -> str:
    check_text(word)
    if word == "":
        raise UnitValueError("list items must not be empty: Quadlet stops reading at an empty word")
    if word == ";":
        raise UnitValueError("must not be a lone ';': systemd reads it as a command separator")
    escaped = escape_dollars(escape_specifiers(word))
    if key.kind is Kind.STRV:
        return _quote_strv_word(escaped)
    if key.kind is Kind.KEYVAL and "=" not in word:
        raise UnitValueError(f"{word!r} is not of the form NAME=VALUE")
    return quote_word(escaped)


_UNIT_NAME_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:-_.\\@"
)


def _unit_name(word: str) -> str:
    check_text(word)
    if not word or any(c not in _UNIT_NAME_CHARS for c in word) or "." not in word:
        raise UnitValueError(
            f"{word!r} is not a unit name (letters, digits, ':-_.\\@' and a type suffix "
            "such as .service or .target)"
        )
    if word.endswith("\\"):
        raise UnitValueError(f"{word!r} must not end with a backslash")
    return word


def render_value(key: QuadletKey, value: str | Sequence[str]) -> str:
    """The text after ``Key=`` for one line of ``key`` carrying ``value``.

    A string is one value; a sequence is a list of values on one line (only for kinds that
    split into words; for EXEC it is the argv). Raises UnitValueError with the reason when the
    value cannot be written so that the reader gets it back unchanged.
    """
    kind = key.kind
    if kind in (Kind.WORDS, Kind.KEYVAL, Kind.STRV):
        words = [value] if isinstance(value, str) else list(value)
        if not words:
            raise UnitValueError("an empty list cannot be written (leave the key out)")
        return " ".join(_quadlet_word(word, key) for word in words)
    if kind is Kind.EXEC:
        if isinstance(value, str):
            raise TypeError(f"{key} takes an argument list, not a string")
        return exec_command(value)
    if kind is Kind.UNIT_NAMES:
        names = [value] if isinstance(value, str) else list(value)
        if not names:
            raise UnitValueError("an empty list cannot be written (leave the key out)")
        return " ".join(_unit_name(name) for name in names)
    if not isinstance(value, str):
        raise TypeError(f"{key} takes one value, not a list")
    if kind is Kind.BOOL:
        normal = _BOOLEANS.get(value.strip().lower())
        if normal is None:
            raise UnitValueError(f"{value!r} is not a boolean (true or false)")
        return normal
    if kind is Kind.VERBATIM:
        return _verbatim(value, single=not key.multi)
    if kind is Kind.UNIT_TEXT:
        check_text(value)
        _check_edges(value)
        return escape_specifiers(value)
    raise AssertionError(f"unhandled kind {kind}")  # pragma: no cover
