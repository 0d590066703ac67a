"""Manifest digests: what a registry, the state file or an operator may hand the watcher.

A digest goes into registry URLs, ``podman pull NAME@DIGEST`` and the state file, so only
the two algorithms registries use are accepted, in their exact form: ``sha256:`` + 64 or
``sha512:`` + 128 lowercase hex digits. Anything else (a path, a query string, a 60 KB value,
non-ASCII text) is refused where it enters.
"""

from __future__ import annotations

import re

_LENGTHS = {"sha256": 64, "sha512": 128}
_FORM = re.compile(r"(sha256|sha512):([0-9a-f]+)")


def is_digest(value: object) -> bool:
    """True for ``sha256:<64 hex>`` and ``sha512:<128 hex>`` (lowercase), nothing else."""
    if not isinstance(value, str) or len(value) > 7 + 128:
        return False
    m = _FORM.fullmatch(value)
    return m is not None and len(m.group(2)) == _LENGTHS[m.group(1)]


def describe(value: object) -> str:
    """A short, printable rendering of a refused value for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
