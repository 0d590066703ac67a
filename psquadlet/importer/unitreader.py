"""Reading an installed systemd unit file the way systemd does (``psquadlet import --unit``).

Only what an import needs, each rule as systemd.syntax(7) and systemd.service(5) state it:
sections and ``Key=Value`` lines, ``#``/``;`` comment lines (also between continued lines), a
trailing backslash continuing the line (replaced by a space), an empty assignment resetting a
list; and for an ``Exec`` line: the prefixes ``-@:+!``, words split at whitespace with
single or double quotes and C escapes, ``%`` specifiers, and ``$VAR`` / ``${VAR}`` from the
unit's ``Environment=`` and ``EnvironmentFile=`` (``$VAR`` as a whole word splits at
whitespace, ``${VAR}`` stays one word, ``$$`` is a dollar). Anything else it cannot read as
systemd would is an ``ImportInputError`` naming ``FILE:LINE: Key``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from psquadlet.importer.draft import ImportInputError

_SEPARATORS = " \t\n\r"
_EXEC_PREFIXES = "-@:+!|"
_NAME_CHARS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_C_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "s": " ",
}  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One assignment: its section, key, value (continuations joined) and first line."""

    section: str
    key: str
    value: str
    line: int


@dataclass(frozen=True)
class UnitText:
    """The assignments of one unit file, in order, and where it came from."""

    path: str
    unit_name: str
    entries: tuple[Entry, ...]

    def where(self, entry: Entry) -> str:
        return f"{self.path}:{entry.line}: {entry.key}"

    def values(self, section: str, key: str) -> list[Entry]:
        """The entries of a list setting, as systemd keeps them: an empty one resets."""
        found: list[Entry] = []
        for entry in self.entries:
            if entry.section == section and entry.key == key:
                found = [] if entry.value == "" else [*found, entry]
        return found

    def last(self, section: str, key: str) -> Entry | None:
        """A single-valued setting: the last assignment wins."""
        found = [e for e in self.entries if e.section == section and e.key == key]
        return found[-1] if found else None


def parse_unit(text: str, path: str) -> UnitText:
    """The assignments of a unit file's text; raises ImportInputError at ``path:line``."""
    entries: list[Entry] = []
    section = ""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line[0] in "#;":
            continue
        # A trailing backslash joins the next line (comment lines in between are skipped).
        while line.endswith("\\"):
            line = line[:-1] + " "
            while i < len(lines) and lines[i].strip()[:1] in ("#", ";"):
                i += 1
            if i >= len(lines):
                break
            line += lines[i].strip()
            i += 1
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ImportInputError(f"{path}:{number}: not a section header: {line[:60]!r}")
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ImportInputError(f"{path}:{number}: expected Key=Value, not {line[:60]!r}")
        if not section:
            raise ImportInputError(f"{path}:{number}: {key.strip()}: outside of any section")
        entries.append(Entry(section, key.strip(), value.strip(), number))
    return UnitText(path, os.path.basename(path), tuple(entries))


# ---- Exec lines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecLine:
    """One command of an Exec line: argv after substitution, and its prefix characters."""

    argv: tuple[str, ...]
    prefixes: str
    substituted: tuple[str, ...]
    """The ``$VAR`` names substituted, for the notes."""


def _c_escape(text: str, i: int, where: str) -> tuple[str, int]:
    """Decode the escape whose letter is at text[i]; (character, next index)."""
    char = text[i] if i < len(text) else ""
    if char in _C_ESCAPES:
        return _C_ESCAPES[char], i + 1
    hexdigits = "0123456789abcdefABCDEF"
    width = {"x": 2, "u": 4, "U": 8}.get(char)
    if width:
        digits = text[i + 1 : i + 1 + width]
        if len(digits) == width and all(d in hexdigits for d in digits):
            code = int(digits, 16)
            if 0 < code <= 0x10FFFF:
                return chr(code), i + 1 + width
    elif char and char in "01234567":
        digits = text[i : i + 3]
        if len(digits) == 3 and all(d in "01234567" for d in digits) and 0 < int(digits, 8) < 256:
            return chr(int(digits, 8)), i + 3
    raise ImportInputError(f"{where}: invalid escape '\\{char}' in the command line")


def _word(text: str, i: int, where: str) -> tuple[str, bool, int]:
    """The word at ``i`` (separators skipped before): (raw word, was quoted, next index)."""
    n = len(text)
    out: list[str] = []
    quote = ""
    quoted = False
    while i < n:
        char = text[i]
        if quote:
            if char == quote:
                quote = ""
                i += 1
                continue
        elif char in "'\"":
            quote, quoted = char, True
            i += 1
            continue
        elif char in _SEPARATORS:
            break
        if char == "\\":
            if i + 1 >= n:
                raise ImportInputError(f"{where}: the command line ends with a lone backslash")
            decoded, i = _c_escape(text, i + 1, where)
            out.append(decoded)
            continue
        out.append(char)
        i += 1
    if quote:
        raise ImportInputError(f"{where}: unbalanced quotes: a {quote} is never closed")
    return "".join(out), quoted, i


def specifiers(unit_name: str, user: bool = False) -> dict[str, str]:
    """The values of systemd's specifiers for ``unit_name`` (systemd.unit(5) "Specifiers")."""
    stem, _, _suffix = unit_name.rpartition(".")
    prefix, at, instance = stem.partition("@")
    home = os.path.expanduser("~") if user else "/root"
    runtime = os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}") if user else "/run"
    values = {
        "n": unit_name, "N": stem, "p": prefix, "P": prefix, "i": instance, "I": instance,
        "j": prefix.rsplit("-", 1)[-1], "J": prefix.rsplit("-", 1)[-1],
        "f": "/" + (instance if at else prefix), "t": runtime, "h": home, "u": "root",
        "U": "0", "g": "root", "G": "0", "s": "/bin/sh", "S": "/var/lib", "C": "/var/cache",
        "L": "/var/log", "E": "/etc", "T": "/tmp", "V": "/var/tmp", "%": "%",
    }  # fmt: skip
    return values


HOST_SPECIFIERS = {"H": "hostname", "l": "short hostname", "m": "machine ID", "b": "boot ID"}


def _host_specifier(letter: str) -> str:
    if letter in ("H", "l"):
        name = socket.gethostname()
        return name.split(".", 1)[0] if letter == "l" else name
    path = "/etc/machine-id" if letter == "m" else "/proc/sys/kernel/random/boot_id"
    try:
        with open(path, encoding="ascii") as f:
            return f.read(64).strip().replace("-", "")
    except OSError:
        return ""


def resolve_specifiers(word: str, values: Mapping[str, str], where: str) -> tuple[str, set[str]]:
    """``%x`` replaced; (the word, the host-specific letters used)."""
    out: list[str] = []
    host: set[str] = set()
    i = 0
    while i < len(word):
        if word[i] != "%":
            out.append(word[i])
            i += 1
            continue
        letter = word[i + 1 : i + 2]
        if letter in values:
            out.append(values[letter])
        elif letter and letter in HOST_SPECIFIERS:
            out.append(_host_specifier(letter))
            host.add(letter)
        else:
            raise ImportInputError(f"{where}: unknown specifier %{letter} in the command line")
        i += 2
    return "".join(out), host


def _substitute(word: str, env: Mapping[str, str], used: list[str]) -> list[str]:
    """systemd's ``$`` pass on one word (after unquoting, as systemd does it on the argv):
    ``$$``; ``${VAR}`` inline, one word; ``$VAR`` as the whole word splits at whitespace."""
    match = _NAME_CHARS.fullmatch(word[1:]) if word.startswith("$") else None
    if match:
        used.append(word[1:])
        return env.get(word[1:], "").split()
    out: list[str] = []
    i = 0
    while i < len(word):
        if word.startswith("$$", i):
            out.append("$")
            i += 2
        elif word.startswith("${", i) and "}" in word[i:]:
            end = word.index("}", i)
            name = word[i + 2 : end]
            if _NAME_CHARS.fullmatch(name):
                used.append(name)
                out.append(env.get(name, ""))
                i = end + 1
                continue
            out.append(word[i])
            i += 1
        else:
            out.append(word[i])
            i += 1
    return ["".join(out)]


def split_exec(
    value: str,
    where: str,
    env: Mapping[str, str],
    spec_values: Mapping[str, str],
) -> tuple[list[ExecLine], set[str]]:
    """Every command of an Exec line (split at a lone ``;``), and the host specifiers used."""
    commands: list[ExecLine] = []
    argv: list[str] = []
    prefixes = ""
    used: list[str] = []
    host: set[str] = set()
    i = 0
    n = len(value)

    def finish() -> None:
        nonlocal argv, prefixes, used
        if argv:
            if "@" in prefixes:  # the second word is argv[0] only: the program is the first
                argv = argv[:1] + argv[2:]
            commands.append(ExecLine(tuple(argv), prefixes, tuple(used)))
        argv, prefixes, used = [], "", []

    while True:
        while i < n and value[i] in _SEPARATORS:
            i += 1
        if i >= n:
            break
        if value[i] == ";" and (i + 1 >= n or value[i + 1] in _SEPARATORS):
            finish()
            i += 1
            continue
        if argv and value.startswith("\\;", i) and (i + 2 >= n or value[i + 2] in _SEPARATORS):
            argv.append(";")
            i += 2
            continue
        if not argv:
            while i < n and value[i] in _EXEC_PREFIXES:
                prefixes += value[i]
                i += 1
        raw, _, i = _word(value, i, where)
        word, letters = resolve_specifiers(raw, spec_values, where)
        host |= letters
        if ":" in prefixes:
            argv.append(word)
            continue
        argv.extend(_substitute(word, env, used))
    finish()
    return commands, host


# ---- EnvironmentFile= and Environment= ------------------------------------------------------


def parse_environment(value: str, where: str) -> dict[str, str]:
    """An ``Environment=`` value: whitespace-separated (quotable) ``VAR=VALUE`` words."""
    env: dict[str, str] = {}
    i = 0
    while True:
        while i < len(value) and value[i] in _SEPARATORS:
            i += 1
        if i >= len(value):
            return env
        word, _, i = _word(value, i, where)
        name, sep, val = word.partition("=")
        if sep and _NAME_CHARS.fullmatch(name):
            env[name] = val
        # systemd ignores an assignment it cannot read (with a warning): so does the import


def parse_environment_file(text: str) -> dict[str, str]:
    """An ``EnvironmentFile=``: ``VAR=VALUE`` lines, ``#``/``;`` comments, quotes removed."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, val = line.partition("=")
        name, val = name.strip(), val.strip()
        if not sep or not _NAME_CHARS.fullmatch(name):
            continue
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
            val = val[1:-1]
        env[name] = val
    return env


# ---- systemd time spans ---------------------------------------------------------------------

_SPAN_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "s": 1, "sec": 1, "second": 1,
    "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600,
    "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400, "w": 604800,
    "week": 604800, "weeks": 604800,
}  # fmt: skip
_SPAN_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)")


def timespan_seconds(value: str) -> int | None:
    """A systemd time span (``10``, ``1min 30s``, ``90s``) in whole seconds, rounded up;
    None for ``infinity`` or what systemd would not read."""
    total = 0.0
    pos = 0
    text = value.strip()
    if not text or text == "infinity":
        return None
    while pos < len(text):
        match = _SPAN_PART.match(text, pos)
        if match is None or (match.group(2) and match.group(2) not in _SPAN_UNITS):
            return None
        total += float(match.group(1)) * _SPAN_UNITS.get(match.group(2) or "s", 1)
        pos = match.end()
    whole = int(total)
    return whole if whole == total else whole + 1
