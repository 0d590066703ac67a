"""Reading unit-file values back the way systemd and Quadlet do: the inverse of
``psquadlet.unitfile``'s escaping (word splitting with C unescapes, ``%`` specifiers, ``$``
substitution in Exec lines). Only the tests and the Quadlet oracle harness need it: the
property tests hold ``unitfile`` to "what is written reads back exactly"."""

from __future__ import annotations

from psquadlet.unitfile import _EXEC_PREFIXES, _SEPARATORS, UnitValueError


def unescape_specifiers(text: str) -> str:
    """Inverse of escape_specifiers; refuses a ``%`` that would be expanded by systemd."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "%":
            if i + 1 < len(text) and text[i + 1] == "%":
                out.append("%")
                i += 2
                continue
            spec = text[i : i + 2]
            raise UnitValueError(f"unescaped specifier {spec!r} would be expanded by systemd")
        out.append(char)
        i += 1
    return "".join(out)


def unescape_dollars(text: str) -> str:
    """Inverse of escape_dollars, for text that escape_dollars produced."""
    return text.replace("$$", "$")


_C_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "s": " ",
}


def _c_unescape_one(text: str, i: int) -> tuple[str, int] | None:
    """Decode the escape whose letter is at text[i]; (decoded, next index) or None."""
    if i >= len(text):
        return None
    char = text[i]
    if char in _C_ESCAPES:
        return _C_ESCAPES[char], i + 1
    hexdigits = "0123456789abcdefABCDEF"
    if char == "x":
        digits = text[i + 1 : i + 3]
        if len(digits) == 2 and all(d in hexdigits for d in digits) and digits != "00":
            return chr(int(digits, 16)), i + 3
        return None
    if char in "uU":
        width = 4 if char == "u" else 8
        digits = text[i + 1 : i + 1 + width]
        if len(digits) == width and all(d in hexdigits for d in digits):
            code = int(digits, 16)
            if 0 < code <= 0x10FFFF:
                return chr(code), i + 1 + width
        return None
    if char in "01234567":
        digits = text[i : i + 3]
        if len(digits) == 3 and all(d in "01234567" for d in digits):
            code = int(digits, 8)
            if 0 < code <= 255:
                return chr(code), i + 3
        return None
    return None


def _extract_word(text: str, start: int, *, cunescape: bool) -> tuple[str | None, int]:
    """The word starting at or after ``start`` and the index just past it.

    Returns (None, len(text)) when only separators are left. An empty quoted word (``""``)
    comes back as "" (callers decide what that means: Go stops, systemd keeps it).
    """
    n = len(text)
    i = start
    while i < n and text[i] in _SEPARATORS:
        i += 1
    if i >= n:
        return None, n
    word: list[str] = []
    quote = ""
    while i < n:
        char = text[i]
        if quote and char == quote:
            quote = ""
            i += 1
            continue
        if char == "\\" and cunescape:
            decoded = _c_unescape_one(text, i + 1)
            if decoded is None:
                if i + 1 >= n:  # trailing backslash: SplitRelax drops it
                    i = n
                    break
                raise UnitValueError(f"unsupported escape {text[i : i + 2]!r} in {text!r}")
            word.append(decoded[0])
            i = decoded[1]
            continue
        if not quote:
            if char in "'\"":
                quote = char
                i += 1
                continue
            if char in _SEPARATORS:
                break
        word.append(char)
        i += 1
    return "".join(word), i


def split_words(text: str, *, cunescape: bool = True) -> list[str]:
    """Split a value the way Quadlet's Go port of systemd's extract_first_word does.

    ``cunescape=True``: quotes removed, C escapes decoded, an unbalanced quote or trailing
    backslash tolerated (Quadlet's SplitRelax|SplitUnquote|SplitCUnescape, used for Exec=,
    PodmanArgs=, Environment=, ...). ``cunescape=False``: quotes removed, backslashes literal
    (SplitRetainEscape|SplitUnquote, used for AddCapability=, Sysctl=, ...).

    Like the Go code, splitting stops at an empty word (``""``). Raises UnitValueError on an
    escape the Go code rejects (it would then drop the whole value).
    """
    words: list[str] = []
    i = 0
    while True:
        word, i = _extract_word(text, i, cunescape=cunescape)
        if not word:
            return words
        words.append(word)


def _resolve_dollars(word: str) -> str:
    """systemd's $-substitution on one word, with no variables defined: ``$$`` -> ``$``;
    a substitution that would happen is marked with NUL (which check_text refuses, so a
    marker never equals an accepted value)."""
    out: list[str] = []
    i = 0
    n = len(word)
    name_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
    while i < n:
        char = word[i]
        if char != "$" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        nxt = word[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = word.find("}", i + 2)
            if end == -1:
                out.append(char)
                i += 1
            else:
                out.append("\x00${" + word[i + 2 : end] + "}")
                i = end + 1
        elif i == 0 and all(c in name_chars for c in word[1:]) and not word[1].isdigit():
            out.append("\x00$" + word[1:])
            i = n
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _resolve_specifiers(word: str) -> str:
    """``%%`` -> ``%``; any other specifier is marked with NUL (see _resolve_dollars)."""
    out: list[str] = []
    i = 0
    while i < len(word):
        if word[i] == "%" and i + 1 < len(word):
            out.append("%" if word[i + 1] == "%" else "\x00%" + word[i + 1])
            i += 2
            continue
        out.append(word[i])
        i += 1
    return "".join(out)


def split_exec(text: str) -> list[list[str]]:
    """Read an Exec line as systemd does: commands split at a lone ``;``, ``\\;`` as a
    literal semicolon, words unquoted and C-unescaped, then ``%`` specifiers and ``$``
    variables resolved (``%%`` and ``$$`` to one character; real substitutions are marked
    with a NUL so they never compare equal to a value). A leading prefix (``-@:+!``) of the
    program is dropped; ``:`` disables the ``$`` pass as in systemd.
    """
    commands: list[list[str]] = []
    current: list[str] = []
    no_env = False
    i = 0
    n = len(text)
    while True:
        while i < n and text[i] in _SEPARATORS:
            i += 1
        if i >= n:
            break
        if current and text[i] == ";" and (i + 1 >= n or text[i + 1] in _SEPARATORS):
            commands.append(current)
            current, no_env = [], False
            i += 1
            continue
        if current and text.startswith("\\;", i) and (i + 2 >= n or text[i + 2] in _SEPARATORS):
            current.append(";")
            i += 2
            continue
        raw, i = _extract_word(text, i, cunescape=True)
        if raw is None:
            break
        if not current:
            if raw == ";":
                continue
            while raw and raw[0] in _EXEC_PREFIXES:
                if raw[0] == ":":
                    no_env = True
                raw = raw[1:]
        word = _resolve_specifiers(raw)
        if not no_env:
            word = _resolve_dollars(word)
        current.append(word)
    if current:
        commands.append(current)
    return commands
