"""perfSONAR's doctor check: the host files the testpoint mounts over perfSONAR's own.

This is a check an extension contributes (``diagnose``'s ``extension_checks``), written against
today's ``psquadlet.perfsonar`` module; when perfSONAR becomes an extension that offers its own
checks, this function moves there unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from psquadlet import perfsonar
from psquadlet.doctor.context import Context
from psquadlet.doctor.report import FAIL, PASS, SKIP, Check
from psquadlet.host import HostFileError, read_host_text


def declared_mounts(ctx: Context) -> list[tuple[str, str, str]]:
    """(container, host path, container path) of every perfSONAR file the config mounts."""
    return [
        (spec.name, source, target)
        for spec in ctx.config.containers
        if isinstance(spec.perfsonar, perfsonar.PerfsonarSpec)
        for source, target in (
            m.split(":")[:2] for m in perfsonar.bind_mounts(spec.name, spec.perfsonar)
        )
    ]


def _problem(path: Path, host_path: str, target: str) -> str:
    rendered = host_path.startswith(perfsonar.HOST_DIR + "/")
    try:
        text = read_host_text(path)
    except FileNotFoundError:
        return "missing: run 'psquadlet generate'" if rendered else "missing"
    except HostFileError as exc:
        return exc.reason
    if target == perfsonar.LIMITS_CONF:
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
    return check_perfsonar_files(declared_mounts(ctx), ctx.host.root)
