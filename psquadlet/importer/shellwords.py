"""Split a pasted command line into words the way a POSIX shell would.

``shlex`` gets two things wrong for pasted ``docker run`` lines: it treats ``#`` inside a word
as a comment, and it cannot tell the caller that it expanded nothing. This splitter follows
the shell's rules for what guides actually contain: single and double quotes, backslashes,
backslash-newline continuations, comments that start a word, and ``$VAR`` / ``${VAR}``
expanded from the given environment (as the operator's shell would have done), each expansion
reported. Anything it cannot do faithfully (command substitution, several commands joined with
``;``, ``&&`` or a pipe) is refused rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ";&|<>"
_PROMPT = re.compile(r"^\s*(?:[$#%>])\s+")


class ShellSyntaxError(ValueError):
    """The text is not a single simple command this splitter can reproduce exactly."""


@dataclass(frozen=True)
class Expansion:
    """A ``$VAR`` the shell would have expanded; ``value`` None when it was unset."""

    name: str
    value: str | None


def split(text: str, environ: Mapping[str, str]) -> tuple[list[str], list[Expansion]]:
    """Words and the variable expansions made; raises ShellSyntaxError."""
    text = _PROMPT.sub("", text, count=1)
    words: list[str] = []
    expansions: list[Expansion] = []
    current: list[str] = []
    in_word = False
    i = 0
    n = len(text)

    def expand(pos: int) -> int:
        """Expand the ``$`` at pos into current; return the index after it."""
        nonlocal in_word
        nxt = text[pos + 1] if pos + 1 < n else ""
        if nxt == "(":
            raise ShellSyntaxError("command substitution $(...) is not supported")
        if nxt == "{":
            end = text.find("}", pos + 2)
            if end < 0:
                raise ShellSyntaxError("unbalanced ${ in the command line")
            name = text[pos + 2 : end]
            if not _NAME.fullmatch(name):
                raise ShellSyntaxError(f"unsupported parameter expansion ${{{name}}}")
            after = end + 1
        else:
            match = _NAME.match(text, pos + 1)
            if match is None:
                current.append("$")
                in_word = True
                return pos + 1
            name = match.group(0)
            after = match.end()
        value = environ.get(name)
        expansions.append(Expansion(name, value))
        current.append(value or "")
        in_word = True
        return after

    while i < n:
        char = text[i]
        if char == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                i += 2
                continue
            if i + 1 >= n:
                raise ShellSyntaxError("the command line ends with a lone backslash")
            current.append(text[i + 1])
            in_word = True
            i += 2
        elif char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unbalanced quotes: a ' is never closed")
            current.append(text[i + 1 : end])
            in_word = True
            i = end + 1
        elif char == '"':
            i += 1
            in_word = True
            while True:
                if i >= n:
                    raise ShellSyntaxError('unbalanced quotes: a " is never closed')
                char = text[i]
                if char == '"':
                    i += 1
                    break
                if char == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                    if text[i + 1] != "\n":
                        current.append(text[i + 1])
                    i += 2
                elif char == "$":
                    i = expand(i)
                elif char == "`":
                    raise ShellSyntaxError("command substitution `...` is not supported")
                else:
                    current.append(char)
                    i += 1
        elif char == "$":
            i = expand(i)
        elif char == "`":
            raise ShellSyntaxError("command substitution `...` is not supported")
        elif char in " \t\n":
            if in_word:
                words.append("".join(current))
                current = []
                in_word = False
            i += 1
        elif char == "#" and not in_word:
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif char in _OPERATORS:
            raise ShellSyntaxError(
                f"the command line holds a shell operator {char!r}: give one docker run "
                "command only (quote the character if it is part of a value)"
            )
        else:
            current.append(char)
            in_word = True
            i += 1
    if in_word:
        words.append("".join(current))
    return words, expansions
