"""One TOML table being read: typed getters that check each value and record located errors.

``config`` reads every table of a configuration through ``Table``; an extension (e.g. the
perfSONAR table) can do the same. A getter never raises for a bad value: it records a
``ConfigError`` (file, line from ``tomlpos``, key path, message) in the shared ``Context`` and
returns the default, so that one pass reports every problem of a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from psquadlet import model, schema, unitfile
from psquadlet.checks import FieldError, check_bound, parse_duration
from psquadlet.errors import ConfigError, did_you_mean
from psquadlet.tomlpos import KeyPositions


def format_path(parts: Sequence[str | int]) -> str:
    """``containers."a.b".ports[2]``: the spelling an operator would search the file for."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        piece = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
        text += f".{piece}" if text else piece
    return text


class Context:
    def __init__(self, source: str, positions: KeyPositions) -> None:
        self.source = source
        self.positions = positions
        self.errors: list[ConfigError] = []

    def error(self, path: Sequence[str | int], message: str, hint: str | None = None) -> None:
        self.errors.append(
            ConfigError(self.source, self.positions.line(path), format_path(path), message, hint)
        )


TYPE_WORDS = (
    (bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
    (list, "an array"), (dict, "a table"),
)  # fmt: skip


def type_name(value: object) -> str:
    for kind, words in TYPE_WORDS:
        if isinstance(value, kind):
            return words
    return type(value).__name__


def check_text(value: str) -> None:
    try:
        unitfile.check_text(value)
    except unitfile.UnitValueError as exc:
        raise FieldError(exc.reason) from None


class Table:
    """One TOML table being read: typed getters that record errors and return defaults."""

    def __init__(
        self,
        ctx: Context,
        data: Mapping[str, Any],
        path: tuple[str | int, ...],
        allowed: Iterable[str] | None,
    ) -> None:
        """``allowed`` None: the keys are names (hosts, volumes, containers), not settings."""
        self.ctx = ctx
        self.data = data
        self.path = path
        allowed_set = set(allowed) if allowed is not None else set(data)
        for key in data:
            if key not in allowed_set:
                ctx.error(
                    (*path, key),
                    f"unknown key {key!r}",
                    did_you_mean(key, allowed_set),
                )

    def _get(self, key: str, kind: type, expected: str) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
        if not ok:
            self.ctx.error((*self.path, key), f"expected {expected}, got {type_name(value)}")
            return None
        return value

    def _checked(
        self, path: tuple[str | int, ...], value: str, check: Callable[[str], str] | None
    ) -> str | None:
        try:
            check_text(value)
            return check(value) if check is not None else value
        except FieldError as exc:
            self.ctx.error(path, exc.message, exc.hint)
            return None

    def has(self, key: str) -> bool:
        return key in self.data

    def text(
        self,
        key: str,
        default: str = "",
        check: Callable[[str], str] | None = None,
        required: bool = False,
    ) -> str:
        """An empty string means "not set" (the default) unless the key is required."""
        value = self._get(key, str, "a string")
        if value is None:
            return default
        if value == "" and not required:
            return default
        result = self._checked((*self.path, key), value, check)
        return default if result is None else result

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._get(key, bool, "true or false")
        return default if value is None else bool(value)

    def integer(self, key: str, default: int = 0, minimum: int = 0, maximum: int = 10**6) -> int:
        value = self._get(key, int, "an integer")
        if value is None:
            return default
        if value < minimum or value > maximum:
            shown = value if abs(value) < 10**12 else "a number too large"
            message = f"must be between {minimum} and {maximum}, got {shown}"
            self.ctx.error((*self.path, key), message)
            return default
        return int(value)

    def duration(self, key: str, default: int, maximum: int | None = None) -> int:
        result = self.opt_duration(key, allow_empty=False, maximum=maximum)
        return default if result is None else result

    def opt_duration(
        self, key: str, allow_empty: bool = True, maximum: int | None = None
    ) -> int | None:
        """Seconds, or None when unset (or "" where allowed). ``maximum``: see schema.bound."""
        value = self.data.get(key)
        if value is None:
            return None
        path = (*self.path, key)
        bound = maximum if maximum is not None else schema.bound(format_path(path[-2:]))
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self.ctx.error(path, f'expected a duration like "90s", got {type_name(value)}')
            return None
        if value == "" and allow_empty:
            return None
        try:
            if isinstance(value, int):
                return check_bound(value, bound)
            return parse_duration(value, bound)
        except FieldError as exc:
            self.ctx.error(path, exc.message, exc.hint)
            return None

    def strlist(
        self,
        key: str,
        default: tuple[str, ...] = (),
        check: Callable[[str], str] | None = None,
    ) -> tuple[str, ...]:
        value = self._get(key, list, "an array of strings")
        if value is None:
            return default
        result: list[str] = []
        for index, item in enumerate(value):
            path = (*self.path, key, index)
            if not isinstance(item, str):
                self.ctx.error(path, f"expected a string, got {type_name(item)}")
                continue
            checked = self._checked(path, item, check)
            if checked is not None:
                result.append(checked)
        return tuple(result)

    def strmap(
        self,
        key: str,
        default: model.Pairs = (),
        key_check: Callable[[str], str] | None = None,
        value_check: Callable[[str], str] | None = None,
    ) -> model.Pairs:
        value = self._get(key, dict, "a table of strings")
        if value is None:
            return default
        result: dict[str, str] = {}
        for name, item in value.items():
            path = (*self.path, key, name)
            if not isinstance(item, str):
                self.ctx.error(path, f"expected a string, got {type_name(item)}")
                continue
            checked_key = self._checked(path, name, key_check)
            checked = self._checked(path, item, value_check)
            if checked_key is not None and checked is not None:
                result[checked_key] = checked
        return model.pairs(result)

    def raw_keys(self, key: str, owned: Mapping[str, str] | None = None) -> model.Extra:
        """``owned``: unit keys psquadlet writes itself -> the setting that controls each."""
        value = self._get(key, dict, "a table of unit-file keys")
        if value is None:
            return ()
        result: dict[str, tuple[str, ...]] = {}
        for name, item in value.items():
            path = (*self.path, key, name)
            if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
                self.ctx.error(path, f"{name!r} is not a unit-file key name (like 'Conflicts')")
                continue
            if owned and name in owned:
                self.ctx.error(
                    path, f"{name}= is written by psquadlet", f"set {owned[name]} instead"
                )
                continue
            items = item if isinstance(item, list) else [item]
            values: list[str] = []
            for entry in items:
                if not isinstance(entry, str):
                    self.ctx.error(
                        path, f"expected a string or array of strings, got {type_name(entry)}"
                    )
                    continue
                checked = self._checked(path, entry, None)
                if checked is not None:
                    values.append(checked)
            result[name] = tuple(values)
        return tuple(sorted(result.items()))

    def table(self, key: str, allowed: Iterable[str] | None) -> Table | None:
        value = self._get(key, dict, "a table")
        if value is None:
            return None
        return Table(self.ctx, value, (*self.path, key), allowed)
