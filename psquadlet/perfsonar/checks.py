"""The doctor checks the perfSONAR extension offers.

Kept out of the extension interface so that parsing and generating never import the doctor.
The doctor calls ``doctor_checks(config)``; today the check itself is
``doctor.check_perfsonar_files``, fed with the mounts this extension declares.
"""

from __future__ import annotations

from pathlib import Path

from psquadlet.doctor import Check, check_perfsonar_files
from psquadlet.model import Config
from psquadlet.perfsonar.files import SYSTEM_HOST_DIR, bind_mounts


def declared_mounts(
    config: Config, host_dir: Path = SYSTEM_HOST_DIR
) -> tuple[tuple[str, str, str], ...]:
    """(container, host path, container path) of every file the perfSONAR tables mount."""
    return tuple(
        (spec.name, source, target)
        for spec in config.containers
        if spec.perfsonar is not None
        for source, target in (
            m.split(":")[:2] for m in bind_mounts(spec.name, spec.perfsonar, host_dir)
        )
    )


def doctor_checks(
    config: Config, root: Path = Path("/"), host_dir: Path = SYSTEM_HOST_DIR
) -> tuple[Check, ...]:
    """The extension's checks for ``config`` (``root`` prefixes host paths, for tests)."""
    return (check_perfsonar_files(declared_mounts(config, host_dir), root),)
