"""The secret-name warning ``psquadlet import`` gives, from the one detector in ``schema``.

A value in ``environment`` is written in clear text to a unit file any user can read (0644)
and shows on the ``podman run`` command line, so ``psquadlet import`` warns (on stderr, never
fatal) for names such as ``DB_PASSWORD``, ``API_TOKEN`` or ``CLIENT_SECRET``, with the same
words as ``psquadlet validate``.
"""

from __future__ import annotations

from psquadlet import schema
from psquadlet.importer.draft import ImportResult

looks_secret = schema.looks_secret


def secret_warnings(result: ImportResult) -> list[str]:
    """One warning per ``environment`` name that looks like a secret, naming its key path."""
    warnings: list[str] = []
    for container in result.containers:
        environment = container.get("environment")
        if isinstance(environment, dict):
            pairs = [(str(name), "") for name in environment]
            warnings += schema.secret_warnings(pairs, f"containers.{container.name}.environment")
    return warnings
