"""Environment variable names that look like secrets, and the warning import gives for them.

A value in ``environment`` is written in clear text to a unit file any user can read (0644)
and shows on the ``podman run`` command line, so ``psquadlet import`` warns (on stderr, never
fatal) for names such as ``DB_PASSWORD``, ``API_TOKEN`` or ``CLIENT_SECRET``.
"""

from __future__ import annotations

from psquadlet.importer.draft import ImportResult

_MARKERS = ("PASSWORD", "TOKEN", "SECRET")


def looks_secret(name: str) -> bool:
    """Whether an environment variable name looks like it holds a secret (any case)."""
    upper = name.upper()
    return any(marker in upper for marker in _MARKERS)


def secret_warnings(result: ImportResult) -> list[str]:
    """One warning per ``environment`` name that looks like a secret, naming its key path."""
    warnings = []
    for container in result.containers:
        environment = container.get("environment")
        if not isinstance(environment, dict):
            continue
        for name in environment:
            if looks_secret(name):
                warnings.append(
                    f"containers.{container.name}.environment.{name}: looks like a secret, and "
                    "environment values end up in a world-readable unit file and on the podman "
                    "command line: put it in an environment_files file of mode 0600, or in a "
                    "Podman secret (podman secret create)"
                )
    return warnings
