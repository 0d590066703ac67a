"""The shapes of compose values: a scalar, a string or list, a map in either spelling, a
command's words, a number of seconds. Each refuses, naming the key, what it cannot be (a list
where a string belongs must not become the text of a Python list)."""

from __future__ import annotations

import math
import shlex
from typing import Any

from psquadlet.importer import durations
from psquadlet.importer.draft import ImportInputError
from psquadlet.tomlwriter import TomlValue


def scalar(value: Any, where: str) -> str:
    """A string, number, boolean or null as compose spells it; a list or mapping is refused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        kind = "list" if isinstance(value, list) else "mapping"
        raise ImportInputError(f"{where}: expected a single value, not a {kind}")
    return str(value)


def mapping(value: Any, where: str) -> dict[Any, Any]:
    """A nested mapping (``bind:``, ``deploy.resources``...); absent or null is empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ImportInputError(f"{where} must be a mapping")
    return value


def string_map(value: Any, where: str) -> dict[str, TomlValue]:
    """Compose's two spellings of a map: a mapping, or a list of ``KEY=VALUE``."""
    if isinstance(value, dict):
        return {str(k): scalar(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        result: dict[str, TomlValue] = {}
        for index, item in enumerate(value):
            k, _sep, v = scalar(item, f"{where}[{index}]").partition("=")
            result[k] = v
        return result
    raise ImportInputError(f"{where} must be a mapping or a list of KEY=VALUE")


def items(value: Any) -> list[Any]:
    """A key that takes one entry or a list of them, as a list."""
    return value if isinstance(value, list) else [value]


def string_list(value: Any, where: str) -> list[str]:
    if isinstance(value, (str, int, float)):
        return [str(value)]
    if isinstance(value, list):
        return [scalar(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ImportInputError(f"{where} must be a string or a list")


def words(value: Any, where: str) -> list[str]:
    """command / entrypoint: a list as is, a string split as a shell would."""
    if isinstance(value, list):
        return string_list(value, where)
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ImportInputError(f"{where}: {exc}") from None
    raise ImportInputError(f"{where} must be a string or a list")


def seconds(value: Any, where: str) -> tuple[int, bool]:
    """Whole seconds (rounded up) of a number or Go duration, and whether that is exact."""
    if isinstance(value, int) and not isinstance(value, bool):
        return durations.whole_number(value, where), True
    exact = durations.go_seconds(scalar(value, where), where)
    whole = durations.whole_number(math.ceil(exact), where)
    return whole, whole == exact
