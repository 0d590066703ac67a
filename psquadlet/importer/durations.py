"""Durations (Go's syntax) and whole numbers as Docker and compose write them -> the
configuration's syntax.

Go durations allow fractions and units below a second (``1.5s``, ``500ms``); the
configuration counts whole seconds. A value that is already whole seconds keeps its
spelling; anything else becomes its number of seconds, rounded up so that a timeout never
gets shorter, and the caller notes the approximation.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from psquadlet.importer.draft import ImportInputError

_UNITS = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "\u00b5s": Decimal("1e-6"),
    "\u03bcs": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}
MAX_NUMBER = 2**63 - 1
"""The largest whole number an import carries over (TOML's integers are 64-bit)."""
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_WHOLE = re.compile(r"(?:\d+[hms])+")


def go_seconds(text: str, what: str) -> Decimal:
    """Seconds in a Go duration string; raises UsageError naming ``what``."""
    if text in ("0", ""):
        return Decimal(0)
    pos = 0
    total = Decimal(0)
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ImportInputError(f"{what}: invalid duration {text!r} (expected e.g. 30s, 1m30s)")
        if len(match.group(1)) > 30:
            raise ImportInputError(f"{what}: the duration {text[:40]!r} is too long")
        try:
            total += Decimal(match.group(1)) * _UNITS[match.group(2)]
        except InvalidOperation:
            raise ImportInputError(f"{what}: invalid duration {text!r}") from None
        pos = match.end()
    return total


def from_go(text: str, what: str) -> tuple[str, bool]:
    """The configuration's spelling of a Go duration, and whether it is exact."""
    seconds = go_seconds(text, what)
    if _WHOLE.fullmatch(text):
        return text, True
    whole = math.ceil(seconds)
    return f"{whole}s", whole == seconds


def whole_number(value: int | str, what: str) -> int:
    """A whole number of at most 64 bits; raises ImportInputError naming ``what``."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 20 or not re.fullmatch(r"[-+]?[0-9]+", text):
            raise ImportInputError(f"{what} needs a whole number, not {value[:40]!r}")
        value = int(text)
    if abs(value) > MAX_NUMBER:
        raise ImportInputError(f"{what}: the number is too large (at most {MAX_NUMBER})")
    return value
