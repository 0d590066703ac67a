"""Compose's interpolation: ``${VAR}`` and its forms, in every value of a compose file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psquadlet.importer.draft import ImportInputError

MAX_NESTING = 16
"""``${A:-${B:-...}}`` levels a value may nest (each level rescans the rest of the text)."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Interpolator:
    """Compose's ``${VAR}`` / ``${VAR:-default}`` / ``${VAR-default}`` / ``${VAR:?err}`` /
    ``${VAR:+alt}`` / ``$VAR`` / ``$$``; records which variables were unset."""

    variables: Mapping[str, str]
    unset: list[str]

    def __call__(self, text: str, where: str, depth: int = 0) -> str:
        if depth > MAX_NESTING:
            raise ImportInputError(f"{where}: ${{...}} nested deeper than {MAX_NESTING} levels")
        out: list[str] = []
        i = 0
        n = len(text)
        while i < n:
            char = text[i]
            if char != "$":
                out.append(char)
                i += 1
                continue
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "{":
                open_braces, j = 1, i + 2
                while j < n and open_braces:
                    if text[j] == "{":
                        open_braces += 1
                    elif text[j] == "}":
                        open_braces -= 1
                    j += 1
                if open_braces:
                    raise ImportInputError(f"{where}: unclosed ${{ in {text!r}")
                out.append(self._braced(text[i + 2 : j - 1], where, depth))
                i = j
            else:
                match = _NAME.match(text, i + 1)
                if match is None:
                    raise ImportInputError(
                        f"{where}: invalid interpolation in {text!r} (write $$ for a literal $)"
                    )
                out.append(self._lookup(match.group(0)))
                i = match.end()
        return "".join(out)

    def _lookup(self, name: str) -> str:
        if name in self.variables:
            return self.variables[name]
        self.unset.append(name)
        return ""

    def _braced(self, body: str, where: str, depth: int) -> str:
        match = _NAME.match(body)
        if match is None:
            raise ImportInputError(f"{where}: invalid interpolation ${{{body}}}")
        name, rest = match.group(0), body[match.end() :]
        if not rest:
            return self._lookup(name)
        for operator in (":-", ":?", ":+", "-", "?", "+"):
            if rest.startswith(operator):
                argument = rest[len(operator) :]
                break
        else:
            raise ImportInputError(f"{where}: invalid interpolation ${{{body}}}")
        value = self.variables.get(name)
        empty_counts = operator.startswith(":")
        missing = value is None or (empty_counts and value == "")
        if operator.endswith("-"):
            return self(argument, where, depth + 1) if missing else str(value)
        if operator.endswith("?"):
            if missing:
                reason = self(argument, where, depth + 1)
                raise ImportInputError(f"{where}: required variable {name} is missing: {reason}")
            return str(value)
        return "" if missing else self(argument, where, depth + 1)

    def tree(self, node: Any, where: str) -> Any:
        """Interpolate every string value (not the keys) of a parsed YAML tree."""
        if isinstance(node, str):
            return self(node, where)
        if isinstance(node, dict):
            return {k: self.tree(v, f"{where}.{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [self.tree(v, f"{where}[{i}]") for i, v in enumerate(node)]
        return node
