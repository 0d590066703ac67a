"""The doctor checks the perfSONAR extension contributes (``CHECKS``).

``psquadlet.doctor.diagnose`` runs them after its own; they read only ``doctor.report`` and
``doctor.context``, so parsing and generating never import the doctor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from psquadlet.doctor.context import CheckFunction, Context
from psquadlet.doctor.report import FAIL, PASS, SKIP, Check
from psquadlet.host import HostFileError, read_host_text
from psquadlet.model import Config
from psquadlet.perfsonar.files import HOST_DIR, SYSTEM_HOST_DIR, bind_mounts
from psquadlet.perfsonar.spec import LIMITS_CONF


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


def _problem(path: Path, host_path: str, target: str) -> str:
    rendered = host_path.startswith(HOST_DIR + "/")
    try:
        text = read_host_text(path)
    except FileNotFoundError:
        return "missing: run 'psquadlet generate'" if rendered else "missing"
    except HostFileError as exc:
        return exc.reason
    if target == LIMITS_CONF:
        try:
            json.loads(text)
        except ValueError as exc:
            return f"not JSON, pScheduler would not read it: {exc}"
    return ""


def check_perfsonar_files(mounts: Sequence[tuple[str, str, str]], root: Path = Path("/")) -> Check:
    """The host files mounted over perfSONAR's: podman refuses to start without them.

    ``mounts`` are (container, host path, container path); a rendered file that is missing
    means 'generate' has not run since the table was added, a missing or non-JSON limits file
    is the operator's to fix.
    """
    if not mounts:
        return Check("perfsonar-files", SKIP, "no perfSONAR files are declared")
    problems: list[str] = []
    items: list[Mapping[str, object]] = []
    for container, host_path, target in mounts:
        problem = _problem(root / host_path.lstrip("/"), host_path, target)
        items.append(
            {"container": container, "host_path": host_path, "target": target, "problem": problem}
        )
        if problem:
            problems.append(f"{container}: {host_path} ({target}): {problem}")
    if problems:
        return Check(
            "perfsonar-files",
            FAIL,
            f"{len(problems)} perfSONAR file(s) the testpoint mounts are not usable",
            "run 'psquadlet generate' for rendered files; create or fix limits_file",
            tuple(problems),
            tuple(items),
        )
    return Check(
        "perfsonar-files", PASS, "every declared perfSONAR file is in place", items=tuple(items)
    )


def perfsonar_files(ctx: Context) -> Check:
    """The doctor check: every file the configuration's perfSONAR tables mount is usable."""
    return check_perfsonar_files(declared_mounts(ctx.config), ctx.host.root)


def doctor_checks(config: Config, root: Path = Path("/")) -> tuple[Check, ...]:
    """The extension's checks for ``config`` alone (``root`` prefixes host paths, for tests)."""
    return (check_perfsonar_files(declared_mounts(config), root),)


CHECKS: tuple[CheckFunction, ...] = (perfsonar_files,)
"""What this extension registers with the doctor."""
